"""Per-call overhead of a quantized linear at M = 1: the time of ``layer(x)`` for a quantized
``nn.Linear`` against the bare lowbit op it ends in (the difference is what the Python face adds:
tensor-subclass dispatch, argument handling) and against the float ``nn.Linear``. Small layers make
the overhead visible; a 4096×4096 layer shows how much of a real decode step it is.

    python benchmarks/bench_call_overhead.py --device cpu --out results/call_overhead.json

Run it against two builds (e.g. PYTHONPATH=build/cpu/python and the installed wheel) to compare them.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from runner import Report, time_ms  # noqa: E402

CONFIGS = ["int8wo", "int4wo-128", "int8dq", "fp6_e3m2", "uint4wo", "float8wo_e4m3"]


# Builds before the format table (no config.linear_op): each kind's op and constant arguments.
_OLD_OPS = {
    "Int4WeightOnlyConfig": ("int4_weight_only_linear", ("group_size",)),
    "Int8WeightOnlyConfig": ("int8_weight_only_linear", ()),
    "Int8DynamicActivationInt8WeightConfig": ("int8_dynamic_activation_int8_linear", ()),
    "Int8DynamicActivationInt4WeightConfig": ("int8_dynamic_activation_int4_linear", ("group_size",)),
    "Float8WeightOnlyConfig": ("float8_weight_only_linear", ()),
    "Float8DynamicActivationFloat8WeightConfig": ("float8_dynamic_activation_linear", ("granularity",)),
    "FPXWeightOnlyConfig": ("fpx_weight_only_linear", ("ebits", "mbits")),
    "UIntXWeightOnlyConfig": ("uintx_weight_only_linear", ("bits", "group_size")),
}


def bare_op(weight):
    """The format's op called directly with the weight's parts (what a layer must at least do)."""
    if hasattr(weight, "config"):
        op, args = getattr(torch.ops.lowbit, weight.config.linear_op), tuple(weight.config.linear_op_args)
    else:
        config = lowbit.inference.parse_quantize_config(weight.config_name)
        name, fields = _OLD_OPS[config.kind]
        op, args = getattr(torch.ops.lowbit, name), tuple(getattr(config, f) for f in fields)
    parts = weight.parts
    return lambda x: op(x, *parts, *args, None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", default="256,4096", help="square layer sizes (in_features = out_features)")
    p.add_argument("--iters", type=int, default=300, help="timed calls per row (median)")
    p.add_argument("--quick", action="store_true", help="one small size, few iterations (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()

    sizes = [256] if args.quick else [int(s) for s in args.sizes.split(",")]
    iters = 20 if args.quick else args.iters
    report = Report("quantized linear per-call time at M = 1 (bf16)", args.device)
    torch.manual_seed(0)
    for n in sizes:
        x = torch.randn(1, n, dtype=torch.bfloat16, device=args.device)
        dense = torch.nn.Linear(n, n, bias=False, dtype=torch.bfloat16, device=args.device)
        with torch.inference_mode():
            dense_ms = time_ms(lambda i: dense(x), args.device, warmup=20, iters=iters)
            for name in CONFIGS:
                layer = torch.nn.Sequential(torch.nn.Linear(n, n, bias=False, dtype=torch.bfloat16,
                                                            device=args.device))
                lowbit.quantize_(layer, name)
                op = bare_op(layer[0].weight)
                op_ms = time_ms(lambda i: op(x), args.device, warmup=20, iters=iters)
                layer_ms = time_ms(lambda i: layer(x), args.device, warmup=20, iters=iters)
                report.add(f"{n}x{n} {name}: layer vs bare op", "bare op", op_ms, "layer(x)", layer_ms)
                report.add(f"{n}x{n} {name}: layer vs float", "nn.Linear bf16", dense_ms, "layer(x)", layer_ms)
    report.save(args.out)


if __name__ == "__main__":
    main()
