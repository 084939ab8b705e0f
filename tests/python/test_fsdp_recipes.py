"""The pretraining recipes on torchrun's ranks (distributed.* keys), both faces, as users run them:

    torchrun --standalone --nproc_per_node=2 --no-python lowbit-train --config pretrain_tiny distributed.enabled=true
    torchrun --standalone --nproc_per_node=2 -m lowbit_recipes.pretrain_llama --config pretrain_tiny distributed.enabled=true

2 Gloo ranks, FSDP per block with float8 all-gather: rank 0 alone prints and writes metrics; a run
stopped after 2 steps and resumed on the same world size logs exactly the losses of the run that
did not stop; a resume on another world size, and the distributed keys' rules, are clear errors.
"""

import json
import os
import subprocess
import sys

import pytest

recipes = pytest.importorskip("lowbit_recipes")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
    [os.path.dirname(os.path.dirname(recipes.__file__))]
    + [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
# A small run: 4 steps of 2 x 32 tokens per rank, every step logged, evaluated at the end.
SMALL = ["model.n_layers=2", "data.batch_size=2", "data.seq_len=32", "train.steps=4", "train.warmup_steps=1",
         "train.log_every=1", "train.eval_every=0", "train.eval_batches=1", "train.checkpoint_every=2",
         "distributed.enabled=true", "distributed.float8_all_gather=true", "distributed.timeout_s=120"]


def _face_cmd(face: str):
    if face == "cpp":
        return ["--no-python", os.path.join(recipes.bin_dir(), "lowbit-train")]
    return ["-m", "lowbit_recipes.pretrain_llama"]


def _run(face: str, nproc: int, out: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [*TORCHRUN, f"--nproc_per_node={nproc}", *_face_cmd(face), "--config", "pretrain_tiny", *SMALL,
           f"train.output_dir={out}", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=ENV)


def _losses(out: str):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


def _have(face: str) -> bool:
    return face == "python" or os.path.isfile(os.path.join(recipes.bin_dir(), "lowbit-train"))


@pytest.mark.parametrize("face", ["cpp", "python"])
def test_two_ranks_resume_exactly(tmp_path, face):
    if not _have(face):
        pytest.skip("lowbit-train not built (LOWBIT_BUILD_RECIPES=OFF)")
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    r = _run(face, 2, full)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # rank 0 speaks for the run
    assert r.stdout.count("pretrain a Llama") == 1 and r.stdout.count("done:") == 1, r.stdout[-3000:]
    assert "# distributed: 2 ranks, FSDP" in r.stdout
    assert os.path.isfile(os.path.join(full, "checkpoint", "model.safetensors"))  # full weights for fine-tuning
    stopped = _run(face, 2, part, "train.stop_at=2")
    assert stopped.returncode == 0, stopped.stdout[-3000:] + stopped.stderr[-3000:]
    resumed = _run(face, 2, part, "train.resume=true")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    assert _losses(part) == _losses(full) and len(_losses(full)) == 4
    # another world size: a clear error, not a silent restart
    other = _run(face, 1, part, "train.resume=true")
    assert other.returncode != 0
    assert "saved by 2 ranks; this run has 1" in other.stdout + other.stderr


@pytest.mark.parametrize("face", ["cpp", "python"])
def test_distributed_key_rules_and_launch_errors(tmp_path, face):
    if not _have(face):
        pytest.skip("lowbit-train not built (LOWBIT_BUILD_RECIPES=OFF)")
    direct = ([os.path.join(recipes.bin_dir(), "lowbit-train")] if face == "cpp"
              else [sys.executable, "-m", "lowbit_recipes.pretrain_llama"])
    env = {k: v for k, v in ENV.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    # a rowwise recipe cannot all-gather in fp8: the schema says so before anything runs
    r = subprocess.run([*direct, "--config", "pretrain_tiny", "distributed.enabled=true",
                        "distributed.float8_all_gather=true", "float8.recipe=rowwise",
                        f"train.output_dir={tmp_path / 'x'}"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2, r.stderr
    assert "distributed.float8_all_gather=true needs float8.recipe=tensorwise" in r.stderr
    assert not (tmp_path / "x").exists()
    # distributed.enabled without torchrun: the missing variables, named
    r = subprocess.run([*direct, "--config", "pretrain_tiny", "distributed.enabled=true", "train.steps=1",
                        f"train.output_dir={tmp_path / 'y'}"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0
    assert "RANK" in r.stderr and "torchrun" in r.stderr, r.stderr[-2000:]
