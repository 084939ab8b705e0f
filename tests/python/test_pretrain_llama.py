"""python -m lowbit_recipes.pretrain_llama: a few steps with each optimizer in float8, exact
resume, config errors from the command line, and C++ checkpoints loading into the Python model."""

import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

recipes = pytest.importorskip("lowbit_recipes")
from lowbit_recipes import data  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not recipes.available(), reason="lowbit built without recipes"),
    pytest.mark.skipif(not os.path.isdir(data.FORTUNES_DIR), reason="fortunes not installed"),
]
from lowbit_recipes.pretrain_llama import main, pretrain  # noqa: E402
from lowbit_recipes.training import lr_at  # noqa: E402
from recipe_support import tiny_overrides  # noqa: E402

CONFIG = os.path.join(recipes.config_dir(), "pretrain_tiny.yaml")
TRAIN_TOOL = os.path.join(recipes.bin_dir(), "lowbit-train")


def run(out, *extra):
    return pretrain(recipes.load_config(CONFIG, tiny_overrides(out, *extra)), quiet=True)


def test_schedule():
    assert lr_at(0, 1.0, 10, 110, 0.1) == 0.1
    assert lr_at(9, 1.0, 10, 110, 0.1) == 1.0
    assert abs(lr_at(60, 1.0, 10, 110, 0.1) - 0.55) < 1e-12
    assert abs(lr_at(110, 1.0, 10, 110, 0.1) - 0.1) < 1e-12


@pytest.mark.parametrize("optim", ["adamw", "adamw8bit", "adamw4bit", "adamwfp8"])
def test_each_optimizer_trains_in_float8(tmp_path, optim):
    r = run(tmp_path, f"optim.name={optim}")
    assert len(r["losses"]) == 8 and all(math.isfinite(l) for l in r["losses"])
    assert (r["losses"][6] + r["losses"][7]) / 2 < r["losses"][0] - 0.1
    assert type(r["model"].layers[0].attention.wq).__name__ == "Float8Linear"
    assert math.isfinite(r["val_loss"])
    assert (tmp_path / "checkpoint" / "model.safetensors").exists()


@pytest.mark.parametrize("optim", ["adamw8bit", "adamw"])
def test_resume_is_exact(tmp_path, optim):
    full = run(tmp_path / "full", f"optim.name={optim}")
    first = run(tmp_path / "split", f"optim.name={optim}", "train.stop_at=3")
    rest = run(tmp_path / "split", f"optim.name={optim}", "train.resume=true")
    assert rest["first_step"] == 3
    assert first["losses"] + rest["losses"] == full["losses"]  # bit for bit
    a = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_command_line_errors_name_the_key(tmp_path, capsys):
    assert main(["--config", CONFIG, "train.stepz=3"]) == 2
    assert "unknown config key 'train.stepz'" in capsys.readouterr().err
    assert main(["--config", CONFIG, "optim.lr=fast"]) == 2
    assert "'optim.lr' (command line): expected float" in capsys.readouterr().err
    assert main(["--config", CONFIG, "optim.lr=-1"]) == 2
    assert "'optim.lr' (command line): '-1.0' is out of range; allowed: > 0" in capsys.readouterr().err


def test_main_writes_outputs(tmp_path, capsys):
    assert main(["--config", CONFIG, *tiny_overrides(tmp_path, "train.steps=2")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pretrain: pretrain a Llama of ")  # what it is about to do, first
    assert "# resolved config" in out and "done: 2 steps" in out and f"outputs: {tmp_path}" in out
    assert recipes.load_config(tmp_path / "config.yaml")["train"]["steps"] == 2
    assert (tmp_path / "metrics.jsonl").read_text().count('"loss"') == 2


@pytest.mark.skipif(not os.path.exists(TRAIN_TOOL), reason="lowbit-train not built")
def test_cpp_checkpoint_loads_into_python(tmp_path):
    """lowbit-train's checkpoint -> the Python Llama: the same validation loss as C++ measured."""
    proc = subprocess.run([TRAIN_TOOL, "--config", CONFIG, *tiny_overrides(tmp_path, "train.steps=3",
                                                                           "float8.enabled=false")],
                          capture_output=True, text=True, check=True)
    cpp_val = [l for l in (tmp_path / "metrics.jsonl").read_text().splitlines() if "val_loss" in l]
    import json
    cpp_val_loss = json.loads(cpp_val[-1])["val_loss"]
    cfg = recipes.load_config(tmp_path / "config.yaml")
    from lowbit_recipes.llama import Llama, LlamaConfig
    from lowbit_recipes.training import evaluate, load_model_weights
    model = Llama(LlamaConfig.from_dict(cfg["model"])).eval()
    assert load_model_weights(str(tmp_path / "checkpoint" / "model.safetensors"), model) == 3
    _, val = data.split_fortunes(data.load_fortunes(), cfg["data"]["val_every"])
    batches = data.val_batches(val, cfg["data"]["batch_size"], cfg["data"]["seq_len"], cfg["train"]["eval_batches"])
    assert abs(evaluate(model, batches, torch.device("cpu")) - cpp_val_loss) < 1e-4, proc.stdout
