"""python -m lowbit_recipes.pretrain_llama with sparse.*: the 2:4 feed-forward layers, the switch to
dense at sparse.dense_after_fraction, exact resume across it, the same numbers as the C++
lowbit-train, and config errors. (The quality experiment is tests/cpp/test_recipe_sparse.cpp and
benchmarks/sparse_quality.py.)"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

recipes = pytest.importorskip("lowbit_recipes")
from lowbit_recipes import data  # noqa: E402

import lowbit.sparse  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not recipes.available(), reason="lowbit built without recipes"),
    pytest.mark.skipif(not os.path.isdir(data.FORTUNES_DIR), reason="fortunes not installed"),
]
from lowbit_recipes.pretrain_llama import pretrain  # noqa: E402
from recipe_support import tiny_overrides  # noqa: E402

CONFIG = os.path.join(recipes.config_dir(), "pretrain_tiny.yaml")
TRAIN_TOOL = os.path.join(recipes.bin_dir(), "lowbit-train")


def overrides(out, *extra):
    """pretrain_tiny shrunk to seconds (recipe_support.py), in float32 with AdamW: 2:4 and float8
    training do not combine."""
    return tiny_overrides(out, "optim.name=adamw", "float8.enabled=false", *extra)


def run(out, *extra):
    return pretrain(recipes.load_config(CONFIG, overrides(out, *extra)), quiet=True)


def test_dense_after_step():
    assert lowbit.sparse.dense_after_step(8, 0.5) == 4
    assert lowbit.sparse.dense_after_step(8, 1.0) == 8
    assert lowbit.sparse.dense_after_step(8, 0.01) == 1
    with pytest.raises(ValueError, match="dense_after_fraction"):
        lowbit.sparse.dense_after_step(8, 0.0)


def test_sparse_then_dense(tmp_path):
    sparse = run(tmp_path / "sparse", "sparse.enabled=true")
    ffn = sparse["model"].layers[0].feed_forward
    assert type(ffn.w1).__name__ == "SemiSparseLinear" and type(ffn.w2).__name__ == "SemiSparseLinear"
    assert type(sparse["model"].layers[0].attention.wq) is torch.nn.Linear  # attention stays dense
    both = run(tmp_path / "both", "sparse.enabled=true", "sparse.dense_after_fraction=0.5")
    assert type(both["model"].layers[0].feed_forward.w1) is torch.nn.Linear  # switched back
    assert both["losses"][:4] == sparse["losses"][:4]
    assert abs(both["losses"][4] - sparse["losses"][4]) < 1e-6  # first dense step: the pruned weights
    assert both["losses"][7] != sparse["losses"][7]
    # The dense weights start from the pruned ones: every w1 is 2:4 right after the switch, so at the end
    # the regrown entries are the ones that were zero (small, after 4 steps), and the weights stay finite.
    assert all(math.isfinite(l) for l in both["losses"])


def test_dense_init(tmp_path):
    """sparse.dense_init=pruned (the default) starts the dense phase from W*M: the first dense loss is the
    sparse forward's on the same batch; master starts from W as it is: the pruned entries act at once."""
    sp = ["sparse.enabled=true", "sparse.dense_after_fraction=0.5", "sparse.gradient=ste"]
    sparse = run(tmp_path / "sparse", "sparse.enabled=true", "sparse.gradient=ste")
    pruned = run(tmp_path / "pruned", *sp, "sparse.dense_init=pruned")
    master = run(tmp_path / "master", *sp, "sparse.dense_init=master")
    assert pruned["losses"][:4] == sparse["losses"][:4] == master["losses"][:4]
    assert abs(pruned["losses"][4] - sparse["losses"][4]) < 1e-6
    assert abs(master["losses"][4] - sparse["losses"][4]) > 1e-4
    assert all(math.isfinite(l) for l in pruned["losses"] + master["losses"])
    assert type(master["model"].layers[0].feed_forward.w1) is torch.nn.Linear


@pytest.mark.parametrize("k", [4, 6])
def test_resume_across_the_switch_is_exact(tmp_path, k):
    sp = ["sparse.enabled=true", "sparse.dense_after_fraction=0.5"]
    full = run(tmp_path / "full", *sp)
    first = run(tmp_path / "split", *sp, f"train.stop_at={k}")
    rest = run(tmp_path / "split", *sp, "train.resume=true")
    assert rest["first_step"] == k
    assert first["losses"] + rest["losses"] == full["losses"]


def test_same_numbers_as_the_cpp_recipe(tmp_path):
    sp = ["sparse.enabled=true", "sparse.dense_after_fraction=0.5"]
    py = run(tmp_path / "py", *sp)
    subprocess.run([TRAIN_TOOL, "--config", CONFIG, *overrides(tmp_path / "cc", *sp)], check=True,
                   capture_output=True)
    with open(tmp_path / "cc" / "metrics.jsonl") as f:
        cc = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    assert len(cc) == 8
    for a, b in zip(py["losses"], cc):
        assert abs(a - b) < 1e-4 * max(1.0, abs(b))


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="do not combine"):
        recipes.load_config(CONFIG, overrides(tmp_path, "sparse.enabled=true", "float8.enabled=true"))
    with pytest.raises(ValueError, match="outside"):
        recipes.load_config(CONFIG, overrides(tmp_path, "sparse.dense_after_fraction=0"))
    with pytest.raises(ValueError, match="sparse.dense_init"):
        recipes.load_config(CONFIG, overrides(tmp_path, "sparse.dense_init=zero"))
    with pytest.raises(ValueError, match="cannot be 2:4"):
        recipes.load_config(CONFIG, overrides(tmp_path, "sparse.enabled=true", "model.hidden_dim=66"))


def test_quality_benchmark_quick():
    """benchmarks/sparse_quality.py --quick (20 steps, 2 seeds): the table, mean ± std per run, both gradients."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "sparse_quality.py")
    pythonpath = os.pathsep.join([os.path.dirname(os.path.dirname(recipes.__file__)), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, script, "--quick"], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=pythonpath)).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ") and "±" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| dense", "| 2:4 FFN, masked", "| 2:4 FFN, masked, dense after 50%",
                                                 "| 2:4 FFN, ste", "| 2:4 FFN, ste, dense after 50%"], out
    assert "seeds 1,2" in out and "sparse.dense_init=pruned" in out
