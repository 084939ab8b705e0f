"""benchmarks/gpu_check_report.py, which turns a GPU check's steps, test results, smoke log and
benchmark rows into the results folder (at most 8 files): the verdict, the failure list, the
merged benchmark tables with every row's baseline and ratio, and the file-count check. The whole
script's plumbing runs in scripts/test.sh as `gpu_check.sh --dry-run`."""

import json
import os
import subprocess
import sys

REPORT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "gpu_check_report.py")

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3" failures="1" errors="1">
<testcase classname="tests.python.test_float8_cuda" name="test_ok" time="0.1"/>
<testcase classname="tests.python.test_float8_cuda" name="test_path[row x row]" time="0.2">
<failure message="AssertionError: scaled_mm paths taken: {'scaled_mm/unit_scale_fallback': 1}">trace</failure></testcase>
<testcase classname="tests.python.test_cuda_kernels" name="test_cast" time="0.1"><error message="RuntimeError: CUDA error">x</error></testcase>
</testsuite></testsuites>"""


def bench_json(title, rows, complete):
    return {"title": title, "env": {"device": "NVIDIA H200", "torch": "2.11.0", "commit": "abc"}, "complete": complete,
            "rows": [{"case": c, "baseline": "bf16", "baseline_ms": b, "candidate": "lowbit", "candidate_ms": m,
                      "gbps": None, "frac_copy_bw": None, "speedup": b / m} for c, b, m in rows]}


def make_run(tmp_path, steps):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "bench" / "bench_a").mkdir(parents=True)
    (work / "bench" / "bench_b").mkdir(parents=True)
    out.mkdir()
    (work / "steps.tsv").write_text("".join("\t".join(s) + "\n" for s in steps))
    (work / "bench" / "bench_a" / "1_a.json").write_text(json.dumps(bench_json("GEMM", [("gemm 8192^3", 2.0, 1.0)], True)))
    (work / "bench" / "bench_b" / "2_b.json").write_text(json.dumps(bench_json("cast", [("row 4096", 0.3, 0.2)], False)))
    (out / "junit.xml").write_text(JUNIT)
    (out / "sanitizer.log").write_text("ok       cast (0.1 s)\nERROR    gemv (0.2 s): ERROR: boom\n"
                                       "========= ERROR SUMMARY: 2 errors\n# gpu_smoke: 7 of 8 cases passed\n")
    for name in ("build.log", "tests.log", "benchmarks.log"):
        (out / name).write_text("")
    return work, out


def run(work, out):
    return subprocess.run([sys.executable, REPORT, "--work", str(work), "--out", str(out), "--device", "NVIDIA H200",
                           "--elapsed", "500", "--budget", "540"], capture_output=True, text=True)


def test_report_lists_failures_rows_and_files(tmp_path):
    work, out = make_run(tmp_path, [("build", "ok", "40", "prebuilt liblowbit + extension"),
                                    ("tests", "FAILED", "200", "1 failed, 1 error, 1 passed"),
                                    ("memcheck", "FAILED", "90", "ERROR SUMMARY: 2 errors"),
                                    ("bench bench_b", "CAPPED", "60", "stopped at its 60s cap; 1 rows")])
    r = run(work, out)
    assert r.returncode == 1, r.stderr
    summary = (out / "summary.md").read_text()
    assert "**Verdict: FAIL** (2 step(s) failed, 2 test failure(s))" in summary
    assert "test_path[row x row]" in summary and "unit_scale_fallback" in summary
    assert "ERROR tests.python.test_cuda_kernels::test_cast" in summary
    assert "ERROR SUMMARY: 2 errors" in summary and "gemv" in summary
    assert "| gemm 8192^3 | bf16 | 2.0000 | lowbit | 1.0000 | 2.00x |" in summary
    assert "cut at its cap" in summary  # bench_b's rows were written before its cap
    merged = json.loads((out / "benchmarks.json").read_text())
    assert [r["benchmark"] for r in merged["reports"]] == ["bench_a", "bench_b"]
    assert sorted(os.listdir(out)) == sorted(["summary.md", "build.log", "tests.log", "junit.xml", "sanitizer.log",
                                              "benchmarks.log", "benchmarks.md", "benchmarks.json"])


def test_report_passes_a_clean_run_and_refuses_a_ninth_file(tmp_path):
    work, out = make_run(tmp_path, [("build", "ok", "40", ""), ("tests", "ok", "200", "1457 passed")])
    (out / "junit.xml").write_text('<testsuites><testsuite><testcase classname="t" name="ok"/></testsuite></testsuites>')
    r = run(work, out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "**Verdict: PASS**" in (out / "summary.md").read_text()
    (out / "extra.txt").write_text("left over")  # a ninth file: the device tool would drop one
    r = run(work, out)
    assert r.returncode == 1
    assert "more than 8 files" in (out / "summary.md").read_text()
