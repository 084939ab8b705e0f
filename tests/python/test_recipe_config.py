"""The recipe config loader from Python: the C++ loader through lowbit_recipes._C, same rules
(``recipe=None``: any YAML config, without a recipe schema)."""

import functools

import pytest

recipes = pytest.importorskip("lowbit_recipes")
pytestmark = pytest.mark.skipif(not recipes.available(), reason="lowbit built without the recipes (no yaml-cpp)")
load_config = functools.partial(recipes.load_config, recipe=None)
dump_config = functools.partial(recipes.dump_config, recipe=None)


@pytest.fixture
def cfg_dir(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tiny.yaml").write_text("model:\n  dim: 64\n  n_layers: 2\n  name: tiny\n")
    (tmp_path / "optim.yaml").write_text("optim:\n  lr: 0.001\n  betas: [0.9, 0.95]\n  fused: false\n")
    (tmp_path / "main.yaml").write_text("defaults:\n  - model/tiny\n  - optim\nmodel:\n  dim: 128\n")
    return tmp_path


def test_composition_and_types(cfg_dir):
    cfg = load_config(cfg_dir / "main.yaml")
    assert cfg == {
        "model": {"dim": 128, "n_layers": 2, "name": "tiny"},
        "optim": {"lr": 0.001, "betas": [0.9, 0.95], "fused": False},
    }
    assert type(cfg["optim"]["lr"]) is float and type(cfg["model"]["dim"]) is int


def test_overrides(cfg_dir):
    cfg = load_config(cfg_dir / "main.yaml", ["optim.lr=1", "model.name=7", "optim.betas=[0.8, 0.9]"])
    assert cfg["optim"]["lr"] == 1.0 and type(cfg["optim"]["lr"]) is float
    assert cfg["model"]["name"] == "7"
    assert cfg["optim"]["betas"] == [0.8, 0.9]
    # The dump loads back to the same config.
    text = dump_config(cfg_dir / "main.yaml", ["optim.lr=1"])
    (cfg_dir / "dumped.yaml").write_text(text)
    assert load_config(cfg_dir / "dumped.yaml") == load_config(cfg_dir / "main.yaml", ["optim.lr=1"])


@pytest.mark.parametrize(
    "override, needle",
    [
        ("model.dim=0.5", "'model.dim' (command line): expected int, got float"),
        ("optim.fused=maybe", "'optim.fused' (command line): expected bool"),
        ("optim.betas=fast", "'optim.betas' (command line): expected list"),
        ("model.dimm=3", "unknown config key 'model.dimm'"),
        ("train.steps=3", "unknown config key 'train.steps'"),
        ("novalue", "expected key.sub=value"),
    ],
)
def test_override_errors_name_the_key(cfg_dir, override, needle):
    with pytest.raises(ValueError, match=None) as err:
        load_config(cfg_dir / "main.yaml", [override])
    assert needle in str(err.value)


def test_file_errors_name_file_and_line(cfg_dir):
    (cfg_dir / "typo.yaml").write_text("defaults: [model/tiny]\nmodel:\n  n_layer: 4\n")
    with pytest.raises(ValueError) as err:
        load_config(cfg_dir / "typo.yaml")
    assert "'model.n_layer'" in str(err.value) and f"{cfg_dir / 'typo.yaml'}:3" in str(err.value)
    (cfg_dir / "bad.yaml").write_text("defaults: [model/tiny]\nmodel:\n  dim: wide\n")
    with pytest.raises(ValueError) as err:
        load_config(cfg_dir / "bad.yaml")
    assert "'model.dim'" in str(err.value) and f"{cfg_dir / 'bad.yaml'}:3" in str(err.value)
    (cfg_dir / "broken.yaml").write_text("model:\n  dim: [1, 2\n")
    with pytest.raises(ValueError, match="broken.yaml:"):
        load_config(cfg_dir / "broken.yaml")


def test_lowbit_is_free_of_recipe_code():
    import subprocess
    import sys

    code = ("import sys, lowbit; assert not any('recipe' in m for m in sys.modules), sorted(sys.modules); "
            "assert not hasattr(lowbit._C, 'recipes_available')\n"
            "try:\n    lowbit.recipes\nexcept AttributeError as e:\n    assert 'lowbit_recipes' in str(e)\n"
            "else:\n    raise SystemExit('lowbit.recipes still exists')")
    subprocess.run([sys.executable, "-c", code], check=True)
