"""benchmarks/suite.py, the CPU benchmark suite: its argument errors name what is allowed, and a run
writes one summary with the machine, torch and commit and each benchmark's table (scripts/test.sh
runs the whole smoke run; here one benchmark)."""

import json
import os
import subprocess
import sys

SUITE = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "suite.py")


def run(*args):
    return subprocess.run([sys.executable, SUITE, *args], capture_output=True, text=True)


def test_suite_needs_cpu_and_known_names():
    r = run()
    assert r.returncode == 2 and "pass --cpu" in r.stderr and "gpu_check.sh" in r.stderr
    r = run("--cpu", "--only", "optim,bogus")
    assert r.returncode == 2 and "bogus" in r.stderr and "call_overhead" in r.stderr


def test_suite_smoke_writes_one_summary(tmp_path):
    r = run("--cpu", "--quick", "--only", "call_overhead", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["torch"] and summary["commit"] and summary["cpu"]
    assert [x["name"] for x in summary["results"]] == ["call_overhead"] and summary["results"][0]["status"] == "ok"
    md = (tmp_path / "summary.md").read_text()
    assert "| call_overhead | ok |" in md and "baseline" in md  # the benchmark's own table, with its baseline
