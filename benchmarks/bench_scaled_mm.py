"""lowbit.core.scaled_mm (cuBLASLt fp8) against bf16 matmul and torch._scaled_mm, plus the costs its
host-side rules add, each measured against the same op without them, in this process:

  gemm        M x N x K fp8 (tensorwise and row-wise scales) vs bf16 torch.matmul, and vs
              torch._scaled_mm (PyTorch's own fp8 GEMM) where it takes the same arguments;
  odd N       N % 16 != 0 pads b and scale_b and copies the (M, N) output out of an (M, N_pad)
              buffer: N = 4088 against N = 4096 (baseline) at the same M and K;
  offset a    an operand that is not 16-byte aligned is copied first: offset view vs aligned;
  plan miss   a new shape on every call (more shapes than the per-thread plan cache's 256, so
              every call builds descriptors and asks the heuristic) vs the same shape (plan hit),
              at a small M where the host side matters.

    python benchmarks/bench_scaled_mm.py --device cuda --out results/scaled_mm.json
    python benchmarks/bench_scaled_mm.py --device cpu --quick     # the float32 emulation (plumbing only)
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from lowbit.core import cast_to_float8, scaled_mm  # noqa: E402
from runner import Report, time_ms  # noqa: E402


def operands(m, n, k, rowwise, device, copies=2):
    """`copies` sets of fp8 operands (rotated between calls so L2 does not serve them)."""
    out = []
    for _ in range(copies):
        a = torch.randn(m, k, device=device, dtype=torch.bfloat16)
        w = torch.randn(n, k, device=device, dtype=torch.bfloat16)  # a linear's weight: b = w.t() is column-major
        qa, sa = cast_to_float8(a, torch.float8_e4m3fn, "row" if rowwise else "tensor")
        qw, sw = cast_to_float8(w, torch.float8_e4m3fn, "row" if rowwise else "tensor")
        out.append((a, w, qa, qw.t(), sa, sw.t() if rowwise else sw))
    return out


def torch_scaled_mm(qa, qb, sa, sb):
    return torch._scaled_mm(qa, qb, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="fewer shapes and iterations (the GPU window, or CPU smoke)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()
    on_cuda = args.device.startswith("cuda")
    emulate = not on_cuda
    if on_cuda and torch.cuda.get_device_capability() < (8, 9):
        sys.exit("bench_scaled_mm: this GPU has no fp8 tensor cores (sm_89+)")
    if on_cuda:
        shapes = [(8192, 8192, 8192)] if args.quick else [(8192, 8192, 8192), (16384, 4096, 4096), (16384, 14336, 4096)]
        odd = (8192, 4096, 4096)
        iters = 10 if args.quick else 30
    else:
        shapes, odd, iters = [(128, 256, 256)], (128, 256, 256), 3
    report = Report("scaled_mm fp8 GEMM (cuBLASLt) and its host-side costs", args.device)

    for m, n, k in shapes:
        for rowwise in (False, True):
            sets = operands(m, n, k, rowwise, args.device)
            label = f"gemm {m}x{n}x{k} {'rowwise' if rowwise else 'tensorwise'}"
            t_bf16 = time_ms(lambda i: sets[i % 2][0] @ sets[i % 2][1].t(), args.device, iters=iters)
            t_ours = time_ms(lambda i: scaled_mm(*sets[i % 2][2:], None, torch.bfloat16, use_fast_accum=True,
                                                 emulate=emulate), args.device, iters=iters)
            report.add(label, "bf16 matmul", t_bf16, "lowbit", t_ours)
            if on_cuda:
                print(f"# {label}: lowbit path {lowbit.core.scaled_mm_last_path()}, "
                      f"{2 * m * n * k / (t_ours * 1e-3) / 1e12:.0f} TFLOP/s")
                try:
                    t_torch = time_ms(lambda i: torch_scaled_mm(*sets[i % 2][2:]), args.device, iters=iters)
                    report.add(label, "torch._scaled_mm", t_torch, "lowbit", t_ours)
                except (RuntimeError, TypeError) as e:  # e.g. a torch without row-wise support here
                    print(f"# {label}: torch._scaled_mm skipped ({str(e).splitlines()[0]})")

    # N % 16 != 0: padding and the output copy, against the aligned N.
    m, n, k = odd
    n_odd = n - 8
    even = operands(m, n, k, True, args.device)
    uneven = operands(m, n_odd, k, True, args.device)
    t_even = time_ms(lambda i: scaled_mm(*even[i % 2][2:], None, torch.bfloat16, emulate=emulate), args.device,
                     iters=iters)
    t_odd = time_ms(lambda i: scaled_mm(*uneven[i % 2][2:], None, torch.bfloat16, emulate=emulate), args.device,
                    iters=iters)
    report.add(f"odd N {m}x{n_odd}x{k} rowwise (pad + output copy)", f"lowbit N={n}", t_even, f"lowbit N={n_odd}", t_odd)

    # An operand that is not 16-byte aligned is copied first.
    qa, qb, sa, sb = even[0][2:]
    buf = torch.empty(qa.numel() + 1, dtype=qa.dtype, device=args.device)
    buf[1:].view(torch.uint8).copy_(qa.reshape(-1).view(torch.uint8))
    qa_offset = buf[1:].view(qa.shape)
    t_aligned = time_ms(lambda i: scaled_mm(qa, qb, sa, sb, None, torch.bfloat16, emulate=emulate), args.device,
                        iters=iters)
    t_offset = time_ms(lambda i: scaled_mm(qa_offset, qb, sa, sb, None, torch.bfloat16, emulate=emulate), args.device,
                       iters=iters)
    report.add(f"offset a {m}x{n}x{k} rowwise (alignment copy)", "aligned a", t_aligned, "offset a", t_offset)

    # Plan cache: the same shape every call (hit) vs a new M every call (miss: descriptors + heuristic).
    k_small, n_small, shapes_cycled = 1024, 1024, 300  # more shapes than kPlanCacheCapacity (256)
    qa, qb, sa, sb = operands(shapes_cycled + 16, n_small, k_small, True, args.device, copies=1)[0][2:]
    t_hit = time_ms(lambda i: scaled_mm(qa[:16], qb, sa[:16], sb, None, torch.bfloat16, emulate=emulate), args.device,
                    iters=max(iters, 20))
    t_miss = time_ms(lambda i: scaled_mm(qa[:17 + i % shapes_cycled], qb, sa[:17 + i % shapes_cycled], sb, None,
                                         torch.bfloat16, emulate=emulate),
                     args.device, warmup=shapes_cycled if on_cuda else 2, iters=max(iters, 20))
    report.add(f"plan miss M~16..316 x{n_small}x{k_small}", "plan hit", t_hit, "plan miss", t_miss)
    report.save(args.out)


if __name__ == "__main__":
    main()
