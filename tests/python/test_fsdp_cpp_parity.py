"""The C++ fully_shard and the Python FSDP2 run of the same model agree.

Python (2 Gloo ranks, torch FSDP2, float8 tensorwise with fp8 all-gather, SGD, precompute) writes
the initial weights and each rank's batches; the C++ test binary (tests/cpp/test_distributed_ranks.cpp,
test PythonParity) runs the same steps under torchrun with lowbit::distributed::fully_shard; losses
and final parameters must match bit for bit.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from dist_launch import run_on_ranks

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _binary():
    explicit = os.environ.get("LOWBIT_DISTRIBUTED_TESTS")
    candidates = [pathlib.Path(explicit)] if explicit else []
    candidates += [ROOT / "build" / b / "tests" / "cpp" / "lowbit_distributed_tests" for b in ("wheel", "cpu")]
    for c in candidates:
        if c.is_file():
            return c
    return None


@pytest.mark.skipif(_binary() is None, reason="lowbit_distributed_tests not built (LOWBIT_BUILD_TESTS=ON with Gloo)")
def test_cpp_fully_shard_equals_python_fsdp2(tmp_path):
    reference = run_on_ranks("fsdp_workers:cpp_parity_reference", world_size=2, timeout=300, path=str(tmp_path))
    env = dict(os.environ, LOWBIT_FSDP_PARITY_DIR=str(tmp_path), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--no-python", str(_binary()), "--gtest_filter=PythonParity.*"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "[  PASSED  ] 1 test" in run.stdout and "SKIPPED" not in run.stdout, run.stdout[-3000:]
    for rank, ref in enumerate(reference):
        cpp = load_file(str(tmp_path / f"cpp_rank{rank}.safetensors"))
        assert cpp.pop("losses").tolist() == ref["losses"]
        assert sorted(cpp) == sorted(ref["params"])
        for name, value in ref["params"].items():
            assert torch.equal(cpp[name], value), (name, (cpp[name] - value).abs().max())
