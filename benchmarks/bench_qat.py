"""QAT's fake quantization in training: a prepared MLP block (Linear, GELU, Linear) forward +
backward, against the float32 block and, when importable, torchao's QAT prepare of the same
scheme, all in this process on the same inputs (rows print lowbit against both; >1: lowbit faster).

Schemes: int8 per-token asymmetric activations + int4 group-32 symmetric weights
(Int8DynActInt4WeightQATConfig), and uint4 group-128 asymmetric weights only
(Int4WeightOnlyQATConfig; torchao: the same fake quantization with an int zero point, its closest).

    python benchmarks/bench_qat.py --device cpu                 # ~1 min on 2 cores
    python benchmarks/bench_qat.py --device cpu --quick         # CI smoke run, seconds
"""

import argparse
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from lowbit import qat  # noqa: E402
from runner import Report, time_ms  # noqa: E402


def block(d: int, h: int, device: str) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(d, h, bias=False), torch.nn.GELU(),
                               torch.nn.Linear(h, d, bias=False)).to(device)


def torchao_prepare(model: torch.nn.Module, scheme: str):
    """torchao's QAT prepare of ``scheme`` on a copy of ``model``, or None without torchao."""
    try:
        from torchao.quantization import quantize_
        from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig
    except ImportError:
        return None
    if scheme == "int8dyn-int4w-g32":
        act = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False)
        weight = IntxFakeQuantizeConfig(torch.int4, group_size=32)
    else:
        act, weight = None, IntxFakeQuantizeConfig(torch.uint4, group_size=128, is_symmetric=False)
    m = copy.deepcopy(model)
    quantize_(m, QATConfig(activation_config=act, weight_config=weight, step="prepare"))
    return m


SCHEMES = {"int8dyn-int4w-g32": lambda: qat.Int8DynActInt4WeightQATConfig(group_size=32),
           "int4w-g128": lambda: qat.Int4WeightOnlyQATConfig(group_size=128)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mlp", default="1024,4096", help="the block's D,H")
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--no-torchao", action="store_true")
    p.add_argument("--quick", action="store_true", help="small shapes and few iterations (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()

    tokens, (d, h) = (64, (128, 256)) if args.quick else (args.tokens, tuple(int(v) for v in args.mlp.split(",")))
    iters = 3 if args.quick else 10
    report = Report(f"QAT prepared MLP {d}-{h}-{d} fwd+bwd, {tokens} tokens", args.device)
    base = block(d, h, args.device)
    xs = [torch.randn(tokens, d, device=args.device, requires_grad=True) for _ in range(2)]
    grad = torch.randn(tokens, d, device=args.device)

    def step(model):
        def fn(i):
            model(xs[i % 2]).backward(grad)
        return fn

    t_fp32 = time_ms(step(base), args.device, warmup=2, iters=iters)
    have_ao = not args.no_torchao and torchao_prepare(block(128, 128, args.device), "int4w-g128") is not None
    print(f"# torchao: {'on' if have_ao else 'absent or off (pip install torchao==0.18.0 to compare)'}; "
          f"threads {torch.get_num_threads()}; float32 block {t_fp32:.2f} ms")
    for scheme, config in SCHEMES.items():
        ours = qat.prepare(copy.deepcopy(base), config())
        t = time_ms(step(ours), args.device, warmup=2, iters=iters)
        report.add(scheme, "float32", t_fp32, "lowbit", t)
        if have_ao:
            ao = torchao_prepare(base, scheme)
            t_ao = time_ms(step(ao), args.device, warmup=2, iters=iters)
            report.add(scheme, "torchao", t_ao, "lowbit", t)
    report.save(args.out)


if __name__ == "__main__":
    main()
