"""Writes the results of benchmarks/gpu_check.sh: summary.md (verdict, steps, test failures, smoke
and memcheck, every benchmark row with its same-run baseline and ratio, the file list),
benchmarks.md and benchmarks.json; then checks the results folder holds at most 8 files (the
device tool brings back no more). Exit status 1 if a step failed or the folder is too full.

    python3 benchmarks/gpu_check_report.py --work WORK --out RESULTS --device NAME --elapsed S --budget S
"""

import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

MAX_FILES = 8
RESULT_FILES = ["summary.md", "build.log", "tests.log", "junit.xml", "sanitizer.log", "benchmarks.log",
                "benchmarks.md", "benchmarks.json"]
BAD = ("FAILED", "REFUSED")  # REFUSED (compute-sanitizer cannot run here) is reported, and a problem to look at


def read_steps(work):
    steps = []
    path = os.path.join(work, "steps.tsv")
    if os.path.exists(path):
        for line in open(path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                steps.append({"step": parts[0], "status": parts[1], "seconds": parts[2],
                              "detail": parts[3] if len(parts) > 3 else ""})
    return steps


def test_failures(out):
    """(test id, first line of its message) for each failed or erroring test: from junit.xml, or
    from pytest's -rfE lines when the XML is missing (a run stopped at its cap)."""
    failures = []
    try:
        root = ET.parse(os.path.join(out, "junit.xml")).getroot()
        for case in root.iter("testcase"):
            for kind in ("failure", "error"):
                el = case.find(kind)
                if el is not None:
                    name = f"{case.get('classname', '')}::{case.get('name', '')}"
                    msg = (el.get("message") or el.text or "").strip().splitlines()
                    failures.append((f"{kind.upper()} {name}", msg[0][:300] if msg else ""))
    except (ET.ParseError, FileNotFoundError):
        pass
    if not failures and os.path.exists(os.path.join(out, "tests.log")):
        for line in open(os.path.join(out, "tests.log"), errors="replace"):
            if line.startswith(("FAILED ", "ERROR ")):
                head, _, msg = line.strip().partition(" - ")
                failures.append((head, msg[:300]))
    return failures


def load_reports(work):
    reports = []
    for path in sorted(glob.glob(os.path.join(work, "bench", "*", "*.json"))):
        try:
            data = json.load(open(path))
        except (OSError, ValueError):
            continue
        data["benchmark"] = os.path.basename(os.path.dirname(path))
        reports.append(data)
    return reports


def fmt(v, digits=4):
    return "" if v is None else f"{v:.{digits}f}"


def report_table(r):
    env = r.get("env", {})
    lines = [f"### {r.get('title', '?')} ({r['benchmark']}{'' if r.get('complete', True) else ', cut at its cap'})",
             "", f"device: {env.get('device', '?')}; torch {env.get('torch', '?')}; commit {env.get('commit', '?')}", "",
             "| case | baseline | baseline ms | candidate | candidate ms | ratio (baseline / candidate) | GB/s |",
             "|---|---|---|---|---|---|---|"]
    for row in r.get("rows", []):
        lines.append(f"| {row['case']} | {row['baseline']} | {fmt(row['baseline_ms'])} | {row['candidate']} | "
                     f"{fmt(row['candidate_ms'])} | {row['speedup']:.2f}x | {fmt(row.get('gbps'), 1)} |")
    if not r.get("rows"):
        lines.append("| (no rows) | | | | | | |")
    return "\n".join(lines) + "\n"


def smoke_lines(out):
    path = os.path.join(out, "sanitizer.log")
    if not os.path.exists(path):
        return []
    keep = []
    for line in open(path, errors="replace"):
        line = line.rstrip()
        if re.match(r"^(ok|ERROR|WRONG|skipped)\s", line) or line.startswith("# ") or "ERROR SUMMARY" in line:
            keep.append(line.lstrip("= "))
    return keep[:60]


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="")
    p.add_argument("--elapsed", type=int, default=0)
    p.add_argument("--budget", type=int, default=0)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args()
    out = args.out

    steps = read_steps(args.work)
    failures = test_failures(out)
    reports = load_reports(args.work)

    with open(os.path.join(out, "benchmarks.json"), "w") as f:
        json.dump({"device": args.device, "dry_run": args.dry_run, "steps": steps, "reports": reports}, f, indent=2)
    bench_md = "\n".join(report_table(r) for r in reports) or "(no benchmark rows)\n"
    with open(os.path.join(out, "benchmarks.md"), "w") as f:
        f.write(f"# Benchmarks: {args.device}\n\nEvery row: a baseline and lowbit in the same process; "
                f"ratio = baseline ms / candidate ms (above 1: lowbit faster).\n\n{bench_md}")

    problems = [s for s in steps if s["status"] in BAD]
    lines = [f"# GPU check{' (dry run)' if args.dry_run else ''}: {args.device}", "",
             f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, commit {git_commit()}, "
             f"{args.elapsed} s of a {args.budget} s budget.", "",
             f"**Verdict: {'PASS' if not problems else 'FAIL'}** ({len(problems)} step(s) failed, "
             f"{len(failures)} test failure(s))", "",
             "| step | status | s | detail |", "|---|---|---|---|"]
    for s in steps:
        lines.append(f"| {s['step']} | {s['status']} | {s['seconds']} | {s['detail'].replace('|', '/')} |")
    lines += ["", f"## Test failures ({len(failures)})", ""]
    if failures:
        lines += [f"- `{name}`: {msg}" for name, msg in failures[:80]]
        if len(failures) > 80:
            lines.append(f"- ... and {len(failures) - 80} more (tests.log, junit.xml)")
    else:
        lines.append("none" if not args.dry_run else "none run (dry run: collected only)")
    lines += ["", "## Smoke and memcheck (sanitizer.log)", "", "```"] + (smoke_lines(out) or ["(no output)"]) + ["```"]
    lines += ["", "## Benchmarks (benchmarks.md, benchmarks.json)", "", bench_md]

    # The folder must hold at most MAX_FILES files; anything else there (an earlier run's) is reported.
    present = sorted(os.listdir(out))
    extra = [f for f in present if f not in RESULT_FILES]
    listed = [f for f in RESULT_FILES if f in present or f == "summary.md"]
    lines += ["## Files", ""] + [f"- {f}" + (f" ({os.path.getsize(os.path.join(out, f))} bytes)"
                                              if os.path.exists(os.path.join(out, f)) else "") for f in listed]
    too_many = len(present) + (0 if "summary.md" in present else 1) > MAX_FILES
    if extra:
        lines.append(f"- not written by this run: {', '.join(extra)}")
    if too_many:
        lines.append(f"\n**The results folder holds more than {MAX_FILES} files: the device tool would drop some.**")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    count = len(os.listdir(out))
    print(f"[gpu_check] results: {count} files in {out} (at most {MAX_FILES})")
    return 1 if problems or too_many or count > MAX_FILES else 0


if __name__ == "__main__":
    sys.exit(main())
