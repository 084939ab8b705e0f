"""float8 training linear: forward + backward at Llama-3-8B shapes, and the raw fp8 GEMM.

CUDA: for each (K, N) at 16384 tokens: bf16 nn.Linear (the baseline), lowbit's Float8Linear per
recipe, and torchao's Float8Linear when torchao is importable, eager and torch.compile'd, all in
this process, printing each one's speedup over bf16. The raw GEMM case times lowbit.scaled_mm
against a bf16 matmul at 8192^3.

CPU (--device cpu): float8 training emulation (``emulate=True``: the float8 casts are real, the
GEMM runs in float32 on the float8 values) of an MLP (Linear, GELU, Linear; --mlp D,H) forward +
backward, per recipe: the float32 MLP, torchao's eager emulation of the same recipe (when
importable) and lowbit's, in this process; rows print lowbit against both.

    python benchmarks/bench_float8_linear.py --device cuda --out results/float8_linear.json
    python benchmarks/bench_float8_linear.py --device cpu            # emulation, ~1 min on 2 cores
"""

import argparse
import copy
import dataclasses
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from lowbit.float8 import Float8LinearConfig, convert_to_float8_training  # noqa: E402
from runner import Report, parse_shapes, time_ms  # noqa: E402

RECIPES = ("tensorwise", "rowwise", "rowwise_with_gw_hp")


def fwd_bwd(module: torch.nn.Module, xs, grad):
    def step(i):
        x = xs[i % len(xs)]
        module(x).backward(grad)
    return step


def torchao_linear(base: torch.nn.Module, recipe: str, emulate: bool = False):
    try:
        from torchao.float8 import Float8LinearConfig as AoConfig, convert_to_float8_training as ao_convert
    except ImportError:
        return None
    config = AoConfig.from_recipe_name(recipe)
    if emulate:
        config = dataclasses.replace(config, emulate=True)
    return ao_convert(copy.deepcopy(base), config=config)


def mlp(d: int, h: int, device: str, dtype: torch.dtype) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(d, h, bias=False), torch.nn.GELU(),
                               torch.nn.Linear(h, d, bias=False)).to(device=device, dtype=dtype)


def cpu_emulation(args) -> None:
    """The CPU rows: an emulated float8 MLP's fwd+bwd against float32 and torchao's emulation."""
    tokens, (d, h) = (64, (128, 256)) if args.quick else (args.cpu_tokens, tuple(int(v) for v in args.mlp.split(",")))
    iters = 3 if args.quick else 10
    report = Report(f"float8 training emulation, MLP {d}-{h}-{d} fwd+bwd, {tokens} tokens (CPU, float32)", "cpu")
    base = mlp(d, h, "cpu", torch.float32)
    xs = [torch.randn(tokens, d, requires_grad=True) for _ in range(2)]
    grad = torch.randn(tokens, d)
    t_fp32 = time_ms(fwd_bwd(base, xs, grad), "cpu", warmup=2, iters=iters)
    have_ao = torchao_linear(base, "tensorwise", emulate=True) is not None and not args.no_torchao
    print(f"# torchao: {'on' if have_ao else 'absent or off (pip install torchao==0.18.0 to compare)'}; "
          f"threads {torch.get_num_threads()}; float32 MLP {t_fp32:.2f} ms")
    for recipe in RECIPES:
        ours = convert_to_float8_training(copy.deepcopy(base),
                                          config=Float8LinearConfig.from_recipe_name(recipe, emulate=True))
        t = time_ms(fwd_bwd(ours, xs, grad), "cpu", warmup=2, iters=iters)
        report.add(f"{recipe}", "float32", t_fp32, "lowbit", t)
        if have_ao:
            try:
                ao = torchao_linear(base, recipe, emulate=True)
                t_ao = time_ms(fwd_bwd(ao, xs, grad), "cpu", warmup=2, iters=iters)
            except Exception as e:  # torchao's emulation has its own limits: say so, keep going
                print(f"# {recipe} torchao: skipped ({type(e).__name__}: {str(e).splitlines()[0]})")
                continue
            report.add(f"{recipe}", "torchao", t_ao, "lowbit", t)
    report.save(args.out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mlp", default="1024,4096", help="CPU: the MLP's D,H")
    p.add_argument("--cpu-tokens", type=int, default=512, help="CPU: tokens per step")
    p.add_argument("--no-torchao", action="store_true")
    p.add_argument("--tokens", type=int, default=16384)
    p.add_argument("--shapes", default="4096x4096,4096x14336,14336x4096,4096x1024", help="KxN list")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny shapes, emulate, CPU smoke run")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.device == "cpu":
        return cpu_emulation(args)
    emulate = False
    tokens, shapes = (256, [(128, 256)]) if args.quick else (args.tokens, parse_shapes(args.shapes))
    iters = 3 if args.quick else 20
    dtype = torch.bfloat16
    report = Report("float8 linear forward+backward (vs bf16 nn.Linear)", args.device)

    modes = ["eager"] if args.no_compile or args.quick else ["eager", "compiled"]
    for k, n in shapes:
        base = torch.nn.Linear(k, n, bias=False, device=args.device, dtype=dtype)
        xs = [torch.randn(tokens, k, device=args.device, dtype=dtype, requires_grad=True) for _ in range(2)]
        grad = torch.randn(tokens, n, device=args.device, dtype=dtype)
        for mode in modes:
            wrap = (lambda m: torch.compile(m)) if mode == "compiled" else (lambda m: m)
            t_bf16 = time_ms(fwd_bwd(wrap(base), xs, grad), args.device, iters=iters)
            for recipe in RECIPES:
                m = convert_to_float8_training(copy.deepcopy(base),
                                               config=Float8LinearConfig.from_recipe_name(recipe, emulate=emulate))
                t = time_ms(fwd_bwd(wrap(m), xs, grad), args.device, iters=iters)
                report.add(f"{mode} {tokens}x{k}x{n} {recipe}", "bf16", t_bf16, "lowbit", t)
                ao = None if args.no_torchao else torchao_linear(base, recipe)
                if ao is not None:
                    t_ao = time_ms(fwd_bwd(wrap(ao), xs, grad), args.device, iters=iters)
                    report.add(f"{mode} {tokens}x{k}x{n} {recipe}", "bf16", t_bf16, "torchao", t_ao)

    # The raw GEMM: fp8 e4m3 x e4m3 -> bf16 with tensorwise scales, fast accumulation.
    size = 512 if args.quick else 8192
    a = torch.randn(size, size, device=args.device, dtype=dtype)
    b = torch.randn(size, size, device=args.device, dtype=dtype)
    qa, sa = lowbit.core.cast_to_float8(a, torch.float8_e4m3fn, "tensor")
    qb, sb = lowbit.core.cast_to_float8(b.t().contiguous(), torch.float8_e4m3fn, "tensor")
    qb = qb.t()  # column-major (K, N), as cuBLASLt wants it: no copy inside the op
    t_bf16 = time_ms(lambda i: a @ b, args.device, iters=iters)
    t_fp8 = time_ms(lambda i: lowbit.core.scaled_mm(qa, qb, sa, sb, use_fast_accum=True, emulate=emulate),
                    args.device, iters=iters)
    row = report.add(f"gemm {size}^3 tensorwise", "bf16", t_bf16, "lowbit", t_fp8)
    print(f"# fp8 GEMM: {2 * size ** 3 / (t_fp8 * 1e-3) / 1e12:.0f} TFLOP/s, bf16: "
          f"{2 * size ** 3 / (t_bf16 * 1e-3) / 1e12:.0f} TFLOP/s, ratio {row.speedup:.2f}x")
    report.save(args.out)


if __name__ == "__main__":
    main()
