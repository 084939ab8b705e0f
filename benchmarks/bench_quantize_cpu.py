"""quantize_ inference linears on the CPU: the float32 nn.Linear against each lowbit config (with
float32 and bfloat16 activations) and torchao's equivalent config when torchao is importable, all
in this process, at Llama-3-8B shapes and M = 1 (decode) and 32 tokens.

Each row prints the float32 linear's time (the baseline), the quantized layer's time and the
ratio (> 1: faster than float32). At M = 1 a linear streams its weight once, so the row also gives
the weight bytes moved per second and their fraction of this machine's copy bandwidth (read +
write, measured at the start of the run): the bytes-moved bound. The machine may be shared: the
baseline and the candidates are timed in interleaved rounds and each time is the median of all
rounds' calls. On a machine shared with other jobs, --threads 1 gives steadier ratios (a
parallel region waits for its slowest thread, which another job may have preempted), and
--cpu-time (with one thread) times each call by the calling thread's CPU time, which leaves out the
time other jobs held the core (cache sharing with them still shows).

Weights are cold by default, as in a model's decode, where every layer's weight is read once per
token and the whole model does not fit in cache: each layer (float32 and quantized alike) is timed
over enough copies of itself that they span twice the last-level cache (sysfs; --hot times one
copy, whose weight then stays in cache when it fits, e.g. 4096 x 1024 in float32 is 16 MiB).

    python benchmarks/bench_quantize_cpu.py                      # the suite, a few minutes on 2 cores
    python benchmarks/bench_quantize_cpu.py --quick              # CI smoke run, seconds
    python benchmarks/bench_quantize_cpu.py --out results/quantize_cpu.json
"""

import argparse
import copy
import itertools
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from bench_quantize import torchao_config, weight_bytes  # noqa: E402
from runner import Report, copy_bandwidth_gbps, parse_shapes  # noqa: E402

LLAMA3_8B_SHAPES = "4096x4096,4096x14336,14336x4096,4096x1024"  # KxN: q/o, gate/up, down, k/v
CONFIGS = ("int8wo", "float8wo", "fp6_e3m2", "fp4_e2m1", "uint4wo", "uint3wo", "int8dq", "float8dq_e4m3_row",
           "int4wo-128")
BF16_CONFIGS = ("int8wo", "float8wo", "fp6_e3m2", "uint4wo")  # also timed with bfloat16 activations


def last_level_cache_bytes() -> int:
    """The largest CPU cache's size from Linux sysfs (32 MiB where unknown)."""
    sizes = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    for entry in os.listdir(base) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, entry, "size")) as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes, default=32 << 20)


def rotating(layers, x):
    """A call of the next layer in `layers` on x, round robin (cold weights when they span the cache)."""
    turn = itertools.cycle(layers)
    return lambda: next(turn)(x)


def interleaved_ms(fns, rounds: int, iters: int, clock=time.perf_counter):
    """Median ms of each fn over `rounds` rounds of `iters` calls, the fns taking turns each round
    (a load change on a shared machine then hits them all alike)."""
    times = [[] for _ in fns]
    for f in fns:  # warm-up
        f()
        f()
    for _ in range(rounds):
        for j, f in enumerate(fns):
            for _ in range(iters):
                t0 = clock()
                f()
                times[j].append((clock() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu only (any other device: nothing to do)")
    p.add_argument("--shapes", default=LLAMA3_8B_SHAPES, help="KxN list")
    p.add_argument("--tokens", default="1,32", help="M list")
    p.add_argument("--configs", default=",".join(CONFIGS), help="lowbit shorthands")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=3, help="calls per round")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time by the calling thread's CPU time (needs --threads 1: every op then runs on it)")
    p.add_argument("--hot", action="store_true",
                   help="time one copy of each layer (weights may stay in cache) instead of copies spanning "
                   "twice the last-level cache")
    p.add_argument("--no-torchao", action="store_true")
    p.add_argument("--quick", action="store_true", help="one small shape, few calls (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()
    if args.device != "cpu":
        print(f"# bench_quantize_cpu: a CPU benchmark; nothing to do on --device {args.device}")
        return

    if args.threads or args.quick:  # the smoke run on one thread: steady on a busy CI machine
        torch.set_num_threads(args.threads or 1)
    if args.cpu_time and torch.get_num_threads() != 1:
        p.error("--cpu-time needs --threads 1 (other threads' work would not be counted)")
    clock = time.thread_time if args.cpu_time else time.perf_counter
    shapes = [(256, 512)] if args.quick else parse_shapes(args.shapes)
    tokens = [1, 32] if args.quick else [int(t) for t in args.tokens.split(",") if t]
    configs = [c for c in args.configs.split(",") if c]
    rounds, iters = (2, 2) if args.quick else (args.rounds, args.iters)
    use_torchao = not (args.no_torchao or args.quick)
    copy_gbps = copy_bandwidth_gbps("cpu", 1 << 24 if args.quick else 1 << 28)
    report = Report("quantize_ linear forward on the CPU (vs float32 nn.Linear)", "cpu", copy_gbps)
    llc = last_level_cache_bytes()
    print(f"# weights {'hot (one copy per layer)' if args.hot or args.quick else f'cold (copies spanning 2 x the {llc >> 20} MiB last-level cache)'}")
    print(f"# threads {torch.get_num_threads()}; lowbit CPU kernels {lowbit.build_info().get('cpu_kernels')}; "
          f"{rounds} interleaved rounds x {iters} calls, medians of {'thread CPU' if args.cpu_time else 'wall'} time; ratio = float32 ms / candidate ms")

    torch.manual_seed(0)
    for k, n in shapes:
        base = torch.nn.Linear(k, n, bias=False).requires_grad_(False)
        # Copies of each layer spanning twice the cache (measured by float32's bytes, the largest).
        copies = 1 if args.hot or args.quick else min(64, math.ceil(2 * llc / (4 * k * n)))
        bases = [base] + [copy.deepcopy(base) for _ in range(copies - 1)]
        for m in tokens:
            x32 = torch.randn(m, k)
            x16 = x32.to(torch.bfloat16)
            case = f"{m}x{k}x{n}"
            for name in configs:
                cands = []  # (label, fn, weight bytes)
                for dtype, x in ((torch.float32, x32), (torch.bfloat16, x16)):
                    if dtype == torch.bfloat16 and name not in BF16_CONFIGS:
                        continue
                    layers = [copy.deepcopy(base).to(dtype) for _ in range(copies)]
                    for layer in layers:
                        lowbit.quantize_(layer, name)
                    cands.append((f"lowbit-{'f32' if dtype == torch.float32 else 'bf16'}", rotating(layers, x),
                                  weight_bytes(layers[0].weight)))
                ao_config = torchao_config(name) if use_torchao else None
                if ao_config is not None:
                    from torchao.quantization import quantize_ as ao_quantize_

                    try:
                        layers = [copy.deepcopy(base) for _ in range(copies)]
                        for layer in layers:
                            ao_quantize_(layer, ao_config)
                        layers[0](x32)
                        cands.append(("torchao-f32", rotating(layers, x32), weight_bytes(layers[0].weight)))
                    except Exception as e:  # torchao's configs have their own device and shape limits
                        print(f"# {case} {name} torchao: skipped ({type(e).__name__}: {str(e).splitlines()[0]})")
                with torch.no_grad():
                    ms = interleaved_ms([rotating(bases, x32)] + [f for _, f, _ in cands], rounds, iters, clock)
                for (label, _, nbytes), t in zip(cands, ms[1:]):
                    report.add(f"{case} {name}", "f32", ms[0], label, t, nbytes if m == 1 else None)
    report.save(args.out)


if __name__ == "__main__":
    main()
