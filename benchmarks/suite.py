"""The CPU benchmark suite: every CPU benchmark at a size that finishes in a few minutes on 2 cores.

Runs, one after another, each benchmark's CPU rows (every row times lowbit against its same-run
baseline: torch's float32 / eager expression, and torchao or bitsandbytes where importable), then
writes one summary with the machine, torch, the commit, the load average before and after (a shared
machine skews ratios: read them with it) and every benchmark's table:

  optimizers          bench_optim.py          low-bit AdamW steps, ns/param, % of copy bandwidth
  quantized linears   bench_quantize_cpu.py   M = 1 and 32, 4096x4096 and a Llama-3-8B FFN shape
  quant primitives    bench_quant_primitives  choose_qparams / quantize to int8, int4, uint4
  float8 cast         bench_float8_cast.py    the cast op and its FSDP steps against torch's amax / divide / to()
  float8 training     bench_float8_linear.py  emulated fwd+bwd of an MLP per recipe
  QAT                 bench_qat.py            a prepared block's fwd+bwd
  call overhead       bench_call_overhead.py  a quantized layer against its bare op

    python benchmarks/suite.py --cpu                          # the suite (few minutes, 2 cores)
    python benchmarks/suite.py --cpu --quick                  # every benchmark's smoke run (CI)
    python benchmarks/suite.py --cpu --only optim,qat --out benchmarks/results/cpu

The GPU counterpart is benchmarks/gpu_check.sh (tier 2 runs the benchmarks on CUDA).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (script, the suite's arguments, the smoke run's arguments); --device cpu and --out are added.
SUITE = {
    "optim": ("bench_optim.py", ["--shapes", "2048x2048", "--cpu-time", "--rounds", "5", "--no-torchao"],
              ["--quick"]),
    "quantize": ("bench_quantize_cpu.py",
                 ["--shapes", "4096x4096,4096x14336", "--tokens", "1,32", "--threads", "1", "--rounds", "3",
                  "--configs", "int8wo,float8wo,fp6_e3m2,uint4wo,int4wo,int8dq,float8dq_e4m3_row"],
                 ["--quick"]),
    "primitives": ("bench_quant_primitives.py", ["--shapes", "4096x4096"], ["--quick"]),
    "float8_cast": ("bench_float8_cast.py", ["--shapes", "4096x4096"], ["--quick"]),
    "float8_training": ("bench_float8_linear.py", [], ["--quick"]),
    "qat": ("bench_qat.py", [], ["--quick"]),
    "call_overhead": ("bench_call_overhead.py", [], ["--quick"]),
}


def commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def run_one(name: str, quick: bool, out_dir: str, cap_s: float) -> dict:
    script, suite_args, quick_args = SUITE[name]
    out_json = os.path.join(out_dir, f"{name}.json")
    cmd = [sys.executable, os.path.join(HERE, script), "--device", "cpu", *(quick_args if quick else suite_args),
           "--out", out_json]
    start = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=cap_s)
        status, log = ("ok" if r.returncode == 0 else f"exit {r.returncode}"), r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        status = f"cut at {cap_s:.0f} s"
        log = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    seconds = time.perf_counter() - start
    table_md = os.path.splitext(out_json)[0] + ".md"
    table = open(table_md).read() if os.path.exists(table_md) else log[-4000:]
    shown = " ".join(os.path.relpath(a) if os.path.isabs(a) else a for a in cmd[1:])  # paths from here
    return {"name": name, "script": script, "command": shown, "status": status, "seconds": round(seconds, 1),
            "table": table}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--cpu", action="store_true", help="run the CPU suite (required: the GPU one is gpu_check.sh)")
    p.add_argument("--quick", action="store_true", help="each benchmark's smoke run (seconds each; CI)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SUITE)}")
    p.add_argument("--cap", type=float, default=300.0, help="seconds at most per benchmark (default 300)")
    p.add_argument("--out", default="", help="folder for the JSON / markdown results and summary.md "
                   "(default: benchmarks/results/cpu-<commit>, or a temporary folder with --quick)")
    args = p.parse_args(argv)
    if not args.cpu:
        p.error("pass --cpu (the CPU suite); the CUDA benchmarks run through benchmarks/gpu_check.sh")
    names = [n for n in args.only.split(",") if n] or list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        p.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; allowed: {', '.join(SUITE)}")
    rev = commit()
    out_dir = args.out or (os.path.join("/tmp", f"lowbit-cpu-suite-{os.getpid()}") if args.quick
                           else os.path.join(HERE, "results", f"cpu-{rev}"))
    os.makedirs(out_dir, exist_ok=True)

    import torch  # after argument errors: importing torch takes seconds

    header = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "cpu": f"{cpu_model()}, {os.cpu_count()} cores", "torch": torch.__version__, "commit": rev,
              "mode": "smoke (--quick)" if args.quick else "suite", "load_before": load_average()}
    print(f"# lowbit CPU benchmark suite | {header['cpu']} | torch {header['torch']} | commit {rev} | "
          f"load {header['load_before']}", flush=True)
    results = []
    for name in names:
        r = run_one(name, args.quick, out_dir, args.cap)
        results.append(r)
        print(f"{name:16s} {r['status']:>14s} {r['seconds']:7.1f} s   ({r['script']})", flush=True)
    header["load_after"] = load_average()
    failed = [r["name"] for r in results if r["status"] != "ok" and not r["status"].startswith("cut")]

    lines = [f"# lowbit CPU benchmark suite ({header['mode']})", "",
             f"{header['date']} | {header['cpu']} | torch {header['torch']} | commit {rev} | "
             f"load average {header['load_before']} before, {header['load_after']} after", "",
             "| benchmark | status | seconds |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['status']} | {r['seconds']} |" for r in results]
    for r in results:
        lines += ["", f"## {r['name']} (`{r['command']}`)", "", r["table"].strip()]
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({**header, "results": results}, f, indent=1)
    total = sum(r["seconds"] for r in results)
    print(f"# {len(results)} benchmarks in {total:.0f} s; failed: {', '.join(failed) or 'none'}; "
          f"results in {out_dir}/summary.md", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
