"""cast_to_float8 (tensor- and row-wise, e4m3) against the plain torch expression
(amax, divide, clamp, .to(float8)), in GB/s and as a fraction of device copy bandwidth.

    python benchmarks/bench_float8_cast.py --device cuda --out results/float8_cast.json
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from runner import Report, copy_bandwidth_gbps, parse_shapes, time_ms  # noqa: E402

E4M3_MAX = torch.finfo(torch.float8_e4m3fn).max


def torch_cast(x: torch.Tensor, granularity: str):
    """The eager torch expression a user would write (the baseline)."""
    amax = x.abs().amax() if granularity == "tensor" else x.abs().amax(dim=-1, keepdim=True)
    scale = amax.float().clamp(min=1e-12) / E4M3_MAX
    data = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return data, scale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--shapes", default="4096x4096,16384x4096,16384x14336")
    p.add_argument("--quick", action="store_true", help="small shapes and few iterations (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()

    shapes = [(256, 512)] if args.quick else parse_shapes(args.shapes)
    iters = 3 if args.quick else 30
    copy_gbps = copy_bandwidth_gbps(args.device, 1 << 22 if args.quick else 1 << 28)
    report = Report("cast_to_float8 (bf16 -> e4m3)", args.device, copy_gbps)
    for m, k in shapes:
        inputs = [torch.randn(m, k, device=args.device, dtype=torch.bfloat16) for _ in range(4)]
        nbytes = m * k * (2 + 1)  # read bf16 once, write fp8 once: the floor
        for g in ("tensor", "row"):
            base = time_ms(lambda i: torch_cast(inputs[i % 4], g), args.device, iters=iters)
            ours = time_ms(lambda i: lowbit.core.cast_to_float8(inputs[i % 4], torch.float8_e4m3fn, g),
                           args.device, iters=iters)
            report.add(f"{g} {m}x{k}", "torch", base, "lowbit", ours, nbytes)
    report.save(args.out)


if __name__ == "__main__":
    main()
