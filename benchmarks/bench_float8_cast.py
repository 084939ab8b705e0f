"""cast_to_float8 (tensor- and row-wise, e4m3) against the plain torch expression
(amax, divide, clamp, .to(float8)) and, when importable, torchao's float8 training cast, all in
this process: GB/s and the fraction of the device's copy bandwidth. Also the tensorwise steps FSDP's
float8 all-gather takes apart, float8_amax and cast_to_float8_with_scale, against torch's
abs().amax() and divide / clamp / .to(float8) with the same scale. On CPU the inputs are float32
(CPUs have no fast bfloat16 here), on CUDA bfloat16; --dtype overrides.

    python benchmarks/bench_float8_cast.py --device cuda --out results/float8_cast.json
    python benchmarks/bench_float8_cast.py --device cpu --quick     # CI smoke run, seconds
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


def torchao_cast():
    """torchao's dynamic cast of float8 training (tensorwise / axiswise), or None without torchao."""
    try:
        from torchao.float8.config import ScalingGranularity
        from torchao.float8.float8_scaling_utils import hp_tensor_to_float8_dynamic
        from torchao.float8.float8_training_tensor import LinearMMConfig
    except ImportError:
        return None
    mm = LinearMMConfig()

    def cast(x, granularity):
        if granularity == "tensor":
            return hp_tensor_to_float8_dynamic(x, torch.float8_e4m3fn, mm)
        return hp_tensor_to_float8_dynamic(x, torch.float8_e4m3fn, mm, scaling_granularity=ScalingGranularity.AXISWISE,
                                           axiswise_dim=-1)
    return cast


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--shapes", default=None, help="MxK list (default: 4096x4096,16384x4096,16384x14336 on CUDA, "
                                                  "1024x4096,4096x4096 on CPU)")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"))
    p.add_argument("--no-torchao", action="store_true")
    p.add_argument("--quick", action="store_true", help="small shapes and few iterations (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()

    on_cpu = args.device == "cpu"
    dtype = getattr(torch, args.dtype or ("float32" if on_cpu else "bfloat16"))
    default_shapes = "1024x4096,4096x4096" if on_cpu else "4096x4096,16384x4096,16384x14336"
    shapes = [(256, 512)] if args.quick else parse_shapes(args.shapes or default_shapes)
    iters = 3 if args.quick else 30
    ao_cast = None if args.no_torchao else torchao_cast()
    copy_gbps = copy_bandwidth_gbps(args.device, 1 << 22 if args.quick else 1 << 28)
    report = Report(f"cast_to_float8 ({str(dtype).replace('torch.', '')} -> e4m3)", args.device, copy_gbps)
    print(f"# torchao: {'on' if ao_cast else 'absent or off (pip install torchao==0.18.0 to compare)'}; "
          f"threads {torch.get_num_threads()}")
    for m, k in shapes:
        inputs = [torch.randn(m, k, device=args.device, dtype=dtype) for _ in range(4)]
        nbytes = m * k * (dtype.itemsize + 1)  # read the input once, write fp8 once: the floor
        for g in ("tensor", "row"):
            base = time_ms(lambda i: torch_cast(inputs[i % 4], g), args.device, iters=iters)
            ours = time_ms(lambda i: lowbit.core.cast_to_float8(inputs[i % 4], torch.float8_e4m3fn, g),
                           args.device, iters=iters)
            report.add(f"{g} {m}x{k}", "torch", base, "lowbit", ours, nbytes)
            if ao_cast is not None:
                t_ao = time_ms(lambda i: ao_cast(inputs[i % 4], g), args.device, iters=iters)
                report.add(f"{g} {m}x{k}", "torchao", t_ao, "lowbit", ours, nbytes)
        scale = lowbit.core.float8_amax_to_scale(lowbit.core.float8_amax([inputs[0]]))[0]
        base = time_ms(lambda i: inputs[i % 4].abs().amax(), args.device, iters=iters)
        ours = time_ms(lambda i: lowbit.core.float8_amax([inputs[i % 4]]), args.device, iters=iters)
        report.add(f"float8_amax {m}x{k}", "torch", base, "lowbit", ours, m * k * dtype.itemsize)
        base = time_ms(lambda i: (inputs[i % 4].float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn),
                       args.device, iters=iters)
        ours = time_ms(lambda i: lowbit.core.cast_to_float8_with_scale(inputs[i % 4], scale, torch.float8_e4m3fn),
                       args.device, iters=iters)
        report.add(f"cast_with_scale {m}x{k}", "torch", base, "lowbit", ours, nbytes)
    report.save(args.out)


if __name__ == "__main__":
    main()
