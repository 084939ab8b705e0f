"""Low-bit AdamW step time per parameter: lowbit.optim.AdamW8bit / AdamW4bit / AdamWFp8 against
torch.optim.AdamW (fp32 states, fused) and, when importable, bitsandbytes' AdamW8bit and torchao's
compiled AdamW8bit / AdamW4bit / AdamWFp8, all in this process on the same parameter.

Each optimizer owns one parameter of the given shape (default one 2048x2048 fp32 matrix) with a
fixed gradient; after warm-up steps the optimizers take turns (interleaved rounds, so a noisy
neighbour on a shared machine hits every one alike) and the median step time is reported as
ns per parameter. Every lowbit row also gives the bytes a step must move at least (parameter
read and written, gradient read, both states' codes and scales read and written) per second,
as a fraction of the device's measured copy bandwidth (bytes read + written): 100% would be the
memory bound. A peer that is not installed, or that fails on this device, is named and skipped.

    python benchmarks/bench_optim.py --device cpu                 # a few minutes on 2 cores
    python benchmarks/bench_optim.py --device cpu --quick         # CI smoke run, seconds
    python benchmarks/bench_optim.py --device cuda --out results/optim.json
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
import lowbit.optim  # noqa: E402
from runner import Report, copy_bandwidth_gbps, parse_shapes  # noqa: E402

FORMATS = {"8bit": lowbit.optim.AdamW8bit, "4bit": lowbit.optim.AdamW4bit, "fp8": lowbit.optim.AdamWFp8}
HYPER = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)


def state_bytes_moved(fmt: str, numel: int, param_bytes: int, block_size: int, shape) -> int:
    """The least a step must move: parameter read + written, gradient read, the two states' codes
    and scales read + written."""
    codes = {"8bit": 2 * numel, "fp8": 2 * numel, "4bit": numel}[fmt]  # m and v together
    blocks = -(-numel // block_size)
    scales = 4 * (2 * blocks if fmt != "4bit" or len(shape) < 2 else blocks + shape[0] + numel // shape[0])
    return 3 * numel * param_bytes + 2 * (codes + scales)


def copy_gbps_cpu_time(nbytes: int = 1 << 28) -> float:
    """Copy bandwidth (bytes read + written) of one thread, timed by its CPU time."""
    src = torch.empty(nbytes, dtype=torch.uint8).random_(0, 255)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(5):
        t0 = time.thread_time()
        dst.copy_(src)
        best = min(best, time.thread_time() - t0)
    return 2 * nbytes / best / 1e9


def make_param(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(shape, generator=g).to(device=device, dtype=dtype))
    p.grad = (torch.randn(shape, generator=g) * 1e-2).to(device=device, dtype=dtype)
    return p


def peers(fmt: str, device: str, use_torchao: bool):
    """(name, constructor) of the peers for one format; says which are absent and why."""
    out = []
    if fmt == "8bit":
        try:
            import bitsandbytes as bnb

            out.append(("bitsandbytes AdamW8bit", lambda ps: bnb.optim.AdamW8bit(ps, **HYPER)))
        except Exception as e:  # ImportError, or a build without this device
            print(f"# bitsandbytes absent ({type(e).__name__}: {e}); its row is skipped")
    if not use_torchao:
        print(f"# torchao {fmt}: skipped (--quick or --no-torchao)")
        return out
    try:
        import torchao.optim as ao

        cls = {"8bit": ao.AdamW8bit, "4bit": ao.AdamW4bit, "fp8": ao.AdamWFp8}[fmt]
        out.append((f"torchao {cls.__name__} (compiled)", lambda ps: cls(ps, **HYPER)))
    except Exception as e:
        print(f"# torchao absent ({type(e).__name__}: {e}); its {fmt} row is skipped")
    return out


def time_steps(optimizers, device: str, warmup: int, rounds: int, steps_per_round: int, cpu_time: bool = False):
    """Median ms per step of each optimizer, taking turns round by round (wall clock, or this
    thread's CPU time with cpu_time)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    clock = time.thread_time if cpu_time else time.perf_counter
    for name, opt in optimizers:
        for _ in range(warmup):
            opt.step()
        sync()
    times = {name: [] for name, _ in optimizers}
    for _ in range(rounds):
        for name, opt in optimizers:
            sync()
            t0 = clock()
            for _ in range(steps_per_round):
                opt.step()
            sync()
            times[name].append((clock() - t0) * 1e3 / steps_per_round)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shapes", default="2048x2048", help="parameter shapes, e.g. 2048x2048,4096x11008")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--formats", default="8bit,4bit,fp8")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU; default: torch's)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one thread, timed by its CPU time: steadier than wall clock on a busy shared machine")
    ap.add_argument("--no-torchao", action="store_true", help="skip torchao (its compile takes minutes on CPU)")
    ap.add_argument("--quick", action="store_true", help="a small shape, few steps, no torchao (CI smoke run)")
    ap.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = ap.parse_args()

    device, dtype = args.device, getattr(torch, args.dtype)
    if args.cpu_time:
        if device != "cpu":
            ap.error("--cpu-time is for --device cpu")
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [(256, 320)] if args.quick else parse_shapes(args.shapes)
    rounds, warmup, steps = (3, 2, 2) if args.quick else (args.rounds, 5, 4)
    formats = [f for f in args.formats.split(",") if f]
    copy_bytes = 1 << 22 if args.quick else 1 << 28
    copy_gbps = copy_gbps_cpu_time(copy_bytes) if args.cpu_time else copy_bandwidth_gbps(device, copy_bytes)
    timing = "thread CPU time" if args.cpu_time else "wall clock"
    report = Report(f"low-bit AdamW step ({args.dtype} parameters, {torch.get_num_threads()} threads, {timing})"
                    if device == "cpu" else f"low-bit AdamW step ({args.dtype} parameters)", device, copy_gbps)
    if device == "cpu":
        print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; lowbit CPU kernels "
              f"{lowbit.build_info()['cpu_kernels']} (ATen CPU capability {torch.backends.cpu.get_cpu_capability()}; "
              f"LOWBIT_CPU_KERNELS selects)")
    summary = []
    for shape in shapes:
        numel = 1
        for d in shape:
            numel *= d
        case_shape = "x".join(map(str, shape))
        base = [("torch AdamW (fused)", torch.optim.AdamW([make_param(shape, dtype, device)], **HYPER, fused=True))]
        base_ms = time_steps(base, device, warmup, rounds, steps, args.cpu_time)
        summary.append((case_shape, base[0][0], base_ms[base[0][0]], numel))
        for fmt in formats:
            ours_name = f"lowbit {FORMATS[fmt].__name__}"
            ours = FORMATS[fmt]([make_param(shape, dtype, device)], **HYPER)
            contenders = [(ours_name, ours)] + base
            for name, make in peers(fmt, device, use_torchao=not (args.quick or args.no_torchao)):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        opt = make([make_param(shape, dtype, device)])
                        opt.step()  # construction errors and compile happen here, not in the timing
                    contenders.append((name, opt))
                except Exception as e:
                    print(f"# {name} failed on {device} ({type(e).__name__}: {str(e)[:200]}); skipped")
            ms = time_steps(contenders, device, warmup, rounds, steps, args.cpu_time)
            block = ours.param_groups[0]["block_size"]
            nbytes = state_bytes_moved(fmt, numel, torch.finfo(dtype).bits // 8, block, shape)
            for name, _ in contenders[1:]:
                report.add(f"{fmt} {case_shape}", name, ms[name], "lowbit", ms[ours_name], nbytes)
            for name, _ in contenders:
                if name != base[0][0]:
                    summary.append((f"{case_shape}", name, ms[name], numel))
    print("\n# ns per parameter (median step time / parameters)")
    for case, name, ms, numel in summary:
        print(f"{case:<12} {name:<36} {ms * 1e6 / numel:8.2f} ns/param")
    report.save(args.out)


if __name__ == "__main__":
    main()
