"""quantize_ inference linears at Llama-3-8B shapes: bf16 nn.Linear against each lowbit config,
and torchao's equivalent config when torchao is importable, all in this process.

For each (K, N) of q/o (4096x4096), k/v (4096x1024), gate/up (4096x14336) and down (14336x4096)
at M = 1, 16 and 2048 tokens: the forward time of the bf16 layer (the baseline), of the layer after
``lowbit.quantize_(layer, shorthand)`` and of torchao's, printed with the speedup over bf16. At
M = 1 the layer streams its weight once, so each row also reports the weight bytes moved per
second and their fraction of the device's peak HBM bandwidth (a table keyed on the device name;
--peak-gbps overrides it).

On CUDA each call is captured once into a CUDA graph and the graph's replays are timed (CUDA
events, warm-up, median): at M = 1 a kernel takes microseconds, less than Python and the
dispatcher need to launch it, so eager timing would measure the host. --no-graphs times eager
calls instead. Several copies of each layer take turns so that small weights are not served from
L2 (the copies together hold at least twice the L2 size).

    python benchmarks/bench_quantize.py --device cuda --out results/quantize.json
    python benchmarks/bench_quantize.py --device cpu --quick     # CI smoke run, under a minute
"""

import argparse
import copy
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from runner import Report, parse_shapes, time_ms  # noqa: E402

LLAMA3_8B_SHAPES = "4096x4096,4096x1024,4096x14336,14336x4096"  # KxN: q/o, k/v, gate/up, down
CONFIGS = ("int4wo-128", "int8wo", "int8dq", "float8wo", "float8dq_e4m3_row", "fp6_e3m2", "uint4wo")

# Peak HBM bandwidth in GB/s by device name (first matching substring wins, so the more
# specific names come first). torch.cuda.get_device_name() gives e.g. "NVIDIA H100 80GB HBM3".
PEAK_HBM_GBPS = (
    ("H200", 4800.0),
    ("H100 NVL", 3900.0),
    ("H100 PCIe", 2000.0),
    ("H100", 3350.0),  # SXM
    ("GH200", 4000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),
    ("L40S", 864.0),
)


def peak_hbm_gbps(device: str, override):
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((gbps for key, gbps in PEAK_HBM_GBPS if key in name), None)


class HbmReport(Report):
    """The runner's report, with the bandwidth column as a fraction of peak HBM bandwidth
    (Report.add divides by ``copy_gbps``; here that holds the peak)."""

    def __init__(self, title: str, device: str, peak_gbps):
        super().__init__(title, device)
        self.copy_gbps = peak_gbps
        self.env["peak_hbm_gbps"] = peak_gbps
        if peak_gbps:
            print(f"# peak HBM bandwidth: {peak_gbps:.0f} GB/s (the '% of peak' column at M = 1)")

    @staticmethod
    def _line(r) -> str:
        return Report._line(r).replace("of copy", "of peak")

    def markdown(self) -> str:
        return super().markdown().replace("% of copy", "% of HBM peak").replace("copy bandwidth", "peak HBM bandwidth")


def weight_bytes(t: torch.Tensor) -> int:
    """Bytes a (possibly quantized, tensor-subclass) weight holds: the sum over its inner tensors."""
    if type(t) in (torch.Tensor, torch.nn.Parameter):
        return t.numel() * t.element_size()
    names, _ = t.__tensor_flatten__()
    return sum(weight_bytes(getattr(t, n)) for n in names)


def torchao_config(shorthand: str):
    """torchao's config for a lowbit shorthand, or None when torchao (or that config) is missing."""
    try:
        import torchao.quantization as ao
        from torchao.quantization import PerRow
    except ImportError:
        return None
    try:
        return {
            "int4wo-128": lambda: ao.Int4WeightOnlyConfig(group_size=128),
            "int8wo": lambda: ao.Int8WeightOnlyConfig(),
            "int8dq": lambda: ao.Int8DynamicActivationInt8WeightConfig(),
            "float8wo": lambda: ao.Float8WeightOnlyConfig(),
            "float8dq_e4m3_row": lambda: ao.Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
            "fp6_e3m2": lambda: ao.FPXWeightOnlyConfig(3, 2),
            "uint4wo": lambda: ao.UIntXWeightOnlyConfig(torch.uint4, group_size=64),
        }[shorthand]()
    except (AttributeError, KeyError, TypeError) as e:
        print(f"# torchao has no equivalent of {shorthand} here ({e})")
        return None


def quantized_copies(base: torch.nn.Module, n: int, quantize):
    out = []
    for _ in range(n):
        m = copy.deepcopy(base)
        quantize(m)
        out.append(m)
    return out


def timed_calls(layers, xs, device: str, graphs: bool):
    """fn(i) for time_ms: layer i % len(layers) on input i % len(xs), replayed from CUDA graphs
    when ``graphs`` (one graph per layer copy, captured after a warm-up call on a side stream)."""
    def eager(i):
        with torch.no_grad():
            layers[i % len(layers)](xs[i % len(xs)])

    if not graphs:
        return eager
    replays = []
    try:
        with torch.no_grad():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for j, layer in enumerate(layers):
                    layer(xs[j % len(xs)])  # lazy initialization (cuBLAS handles, workspaces) outside capture
            torch.cuda.current_stream().wait_stream(side)
            for j, layer in enumerate(layers):
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    layer(xs[j % len(xs)])
                replays.append(g)
    except RuntimeError as e:  # something in the layer cannot be captured (a host sync): say so, time eager
        print(f"# CUDA graph capture failed ({str(e).splitlines()[0]}); timing eager calls for this one")
        torch.cuda.synchronize()
        return eager
    return lambda i: replays[i % len(replays)].replay()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--shapes", default=LLAMA3_8B_SHAPES, help="KxN list")
    p.add_argument("--tokens", default="1,16,2048", help="M list")
    p.add_argument("--configs", default=",".join(CONFIGS), help="lowbit shorthands")
    p.add_argument("--peak-gbps", type=float, default=None, help="peak HBM bandwidth (GB/s) for the M = 1 fractions")
    p.add_argument("--no-graphs", action="store_true", help="time eager calls, not CUDA graph replays")
    p.add_argument("--no-torchao", action="store_true")
    p.add_argument("--quick", action="store_true", help="small shapes and few iterations (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()

    on_cuda = args.device.startswith("cuda")
    shapes = [(256, 512)] if args.quick else parse_shapes(args.shapes)
    tokens = [1, 16] if args.quick else [int(t) for t in args.tokens.split(",") if t]
    configs = [c for c in args.configs.split(",") if c]
    iters = 3 if args.quick else 30
    graphs = on_cuda and not args.no_graphs
    use_torchao = not (args.no_torchao or args.quick)
    dtype = torch.bfloat16
    l2 = getattr(torch.cuda.get_device_properties(args.device), "L2_cache_size", 50 << 20) if on_cuda else 0
    report = HbmReport("quantize_ linear forward (vs bf16 nn.Linear)", args.device,
                       peak_hbm_gbps(args.device, args.peak_gbps))
    print(f"# timing: {'CUDA graph replays' if graphs else 'eager calls'}; torchao "
          f"{'on' if use_torchao and torchao_config(configs[0]) is not None else 'off'}")

    for k, n in shapes:
        base = torch.nn.Linear(k, n, bias=False, device=args.device, dtype=dtype).requires_grad_(False)
        for m in tokens:
            xs = [torch.randn(m, k, device=args.device, dtype=dtype) for _ in range(4)]
            case = f"{m}x{k}x{n}"

            def copies_for(nbytes):  # enough copies that they do not all fit in L2 together
                return max(1, min(64, math.ceil(2 * l2 / max(nbytes, 1)))) if on_cuda else 1

            bf16_bytes = weight_bytes(base.weight)
            bf16_layers = [base] + [copy.deepcopy(base) for _ in range(copies_for(bf16_bytes) - 1)]
            t_bf16 = time_ms(timed_calls(bf16_layers, xs, args.device, graphs), args.device, iters=iters)
            if m == 1 and report.copy_gbps:
                gbps = bf16_bytes / (t_bf16 * 1e-3) / 1e9
                print(f"# {case} bf16: {gbps:.0f} GB/s, {100 * gbps / report.copy_gbps:.1f}% of peak")
            del bf16_layers

            for name in configs:
                candidates = [("lowbit", lambda mod, name=name: lowbit.quantize_(mod, name))]
                ao_config = torchao_config(name) if use_torchao else None
                if ao_config is not None:
                    from torchao.quantization import quantize_ as ao_quantize_

                    candidates.append(("torchao", lambda mod, c=ao_config: ao_quantize_(mod, c)))
                for label, quantize in candidates:
                    try:
                        probe = quantized_copies(base, 1, quantize)[0]
                        nbytes = weight_bytes(probe.weight)
                        layers = [probe] + quantized_copies(base, copies_for(nbytes) - 1, quantize)
                        t = time_ms(timed_calls(layers, xs, args.device, graphs), args.device, iters=iters)
                    except Exception as e:
                        if label == "lowbit":
                            raise
                        # torchao's configs have their own device and shape limits: say so, keep going.
                        print(f"# {case} {name} {label}: skipped ({type(e).__name__}: {str(e).splitlines()[0]})")
                        continue
                    report.add(f"{case} {name}", "bf16", t_bf16, label, t, nbytes if m == 1 else None)
                    del layers, probe
    report.save(args.out)


if __name__ == "__main__":
    main()
