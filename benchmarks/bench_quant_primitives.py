"""The quantization primitives on one weight: lowbit's ops against the eager torch expression a
user would write and, when importable, torchao's primitives (torchao.quantization.quant_primitives),
all in this process on the same input, each row printing the ratio (>1: lowbit is faster).

Cases, on a float32 4096x4096 weight (CPUs have no fast bfloat16 here; --dtype overrides):
  int8 per-row symmetric          choose + quantize (what int8wo / int8dq do to a weight)
  int4 group-32 symmetric          choose + quantize + pack two codes per byte (int8dq-int4 / QAT's weight)
  uint4 group-128 asymmetric       choose + quantize + pack (uint4wo / int4wo-like)
  dequantize int8 per-row          codes -> float
  fake_quantize int4 group-32      choose + quantize + dequantize in one op (QAT's forward)
  fpx e3m2 encode / decode         float <-> 6-bit codes (fp6 weight-only)
  pack / unpack 4-bit              bit packing alone

    python benchmarks/bench_quant_primitives.py --device cpu
    python benchmarks/bench_quant_primitives.py --device cpu --quick   # CI smoke run, seconds
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from lowbit import core  # noqa: E402
from runner import Report, parse_shapes, time_ms  # noqa: E402

EPS = torch.finfo(torch.float32).eps


# ---- the eager torch expressions (baselines) ----------------------------------------------------
def torch_symmetric(w, group, qmin, qmax):
    g = w.float().reshape(-1, group)
    amax = g.abs().amax(dim=1, keepdim=True)
    scale = (amax / ((qmax - qmin) / 2)).clamp(min=EPS)
    q = torch.clamp(torch.round(g / scale), qmin, qmax).to(torch.int8)
    return q.reshape(w.shape), scale


def torch_asymmetric(w, group, qmin, qmax):
    g = w.float().reshape(-1, group)
    lo, hi = g.amin(dim=1, keepdim=True).clamp(max=0), g.amax(dim=1, keepdim=True).clamp(min=0)
    scale = ((hi - lo) / (qmax - qmin)).clamp(min=EPS)
    zp = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
    q = torch.clamp(torch.round(g / scale) + zp, qmin, qmax).to(torch.uint8)
    return q.reshape(w.shape), scale, zp


def torch_pack4(q):
    q = q.reshape(-1).view(torch.uint8)
    return (q[0::2] & 15) | ((q[1::2] & 15) << 4)


def torch_unpack4(p):
    return torch.stack([p & 15, p >> 4], dim=-1).reshape(-1)


def torch_fake_quant(w, group, qmin, qmax):
    q, scale = torch_symmetric(w, group, qmin, qmax)
    return (q.reshape(-1, group).float() * scale).reshape(w.shape)


# ---- torchao's primitives (optional peer) -------------------------------------------------------
def torchao_ops():
    try:
        from torchao.quantization import quant_primitives as qp
    except ImportError:
        return None
    return qp


def cases(w, qp):
    """(name, bytes moved at the floor, {label: fn}) for every case; fn(i) rotates nothing (one weight)."""
    K = w.shape[-1]
    g32, g128 = min(32, K), min(128, K)
    n = w.numel()
    isz = w.element_size()
    q8, s8 = lowbit.core.quantize_affine(w, (1, K), *core.choose_qparams_affine(w, (1, K), "int8"), "int8"), None
    s8, z8 = core.choose_qparams_affine(w, (1, K), "int8")
    codes4 = torch.randint(0, 16, (n,), dtype=torch.uint8, device=w.device)
    packed4 = core.pack_uintx(codes4, 4)
    fp6 = core.fpx_encode(w, 3, 2)
    out = []

    def lb_int8(i):
        s, z = core.choose_qparams_affine(w, (1, K), "int8", "symmetric")
        return core.quantize_affine(w, (1, K), s, z, "int8")

    def lb_int4(i):
        s, z = core.choose_qparams_affine(w, (1, g32), "int4", "symmetric")
        return core.pack_uintx(core.quantize_affine(w, (1, g32), s, z, "int4").view(torch.uint8) & 15, 4)

    def lb_uint4(i):
        s, z = core.choose_qparams_affine(w, (1, g128), "uint4", "asymmetric")
        return core.pack_uintx(core.quantize_affine(w, (1, g128), s, z, "uint4"), 4)

    row = {"torch": lambda i: torch_symmetric(w, K, -128, 127), "lowbit": lb_int8}
    row4 = {"torch": lambda i: torch_pack4(torch_symmetric(w, g32, -8, 7)[0] & 15), "lowbit": lb_int4}
    rowu4 = {"torch": lambda i: torch_pack4(torch_asymmetric(w, g128, 0, 15)[0]), "lowbit": lb_uint4}
    deq = {"torch": lambda i: q8.float() * s8, "lowbit": lambda i: core.dequantize_affine(q8, (1, K), s8, z8, "int8")}
    fq = {"torch": lambda i: torch_fake_quant(w, g32, -8, 7),
          "lowbit": lambda i: torch.ops.lowbit.fake_quantize_affine(w, [1, g32], "int4", "symmetric", "int")}
    enc = {"lowbit": lambda i: core.fpx_encode(w, 3, 2)}
    dec = {"lowbit": lambda i: core.fpx_decode(fp6, 3, 2)}
    pack = {"torch": lambda i: torch_pack4(codes4), "lowbit": lambda i: core.pack_uintx(codes4, 4)}
    unpack = {"torch": lambda i: torch_unpack4(packed4), "lowbit": lambda i: core.unpack_uintx(packed4, 4, n)}
    if qp is not None:
        M = qp.MappingType

        def ao_int8(i):
            s, z = qp.choose_qparams_affine(w, M.SYMMETRIC, (1, K), torch.int8, eps=EPS)
            return qp.quantize_affine(w, (1, K), s, z, torch.int8)

        def ao_int4(i):
            s, z = qp.choose_qparams_affine(w, M.SYMMETRIC, (1, g32), torch.int8, -8, 7, eps=EPS)
            return torch_pack4(qp.quantize_affine(w, (1, g32), s, z, torch.int8, -8, 7) & 15)

        def ao_uint4(i):
            s, z = qp.choose_qparams_affine(w, M.ASYMMETRIC, (1, g128), torch.uint8, 0, 15, eps=EPS)
            return torch_pack4(qp.quantize_affine(w, (1, g128), s, z, torch.uint8, 0, 15))

        def ao_fq(i):
            s, z = qp.choose_qparams_affine(w, M.SYMMETRIC, (1, g32), torch.int8, -8, 7, eps=EPS)
            return qp._fake_quantize_affine(w, (1, g32), s, z, torch.int8, -8, 7)

        z8i = torch.zeros_like(s8, dtype=torch.int32)
        row["torchao"], row4["torchao"], rowu4["torchao"], fq["torchao"] = ao_int8, ao_int4, ao_uint4, ao_fq
        deq["torchao"] = lambda i: qp.dequantize_affine(q8, (1, K), s8, z8i, torch.int8)
        enc["torchao"] = lambda i: qp._f32_to_floatx_unpacked(w.float(), 3, 2)
        dec["torchao"] = lambda i: qp._floatx_unpacked_to_f32(fp6, 3, 2)
    out += [("int8 per-row sym choose+quantize", n * (isz + 1), row),
            ("int4 g32 sym choose+quantize+pack", n * isz + n // 2, row4),
            ("uint4 g128 asym choose+quantize+pack", n * isz + n // 2, rowu4),
            ("dequantize int8 per-row", n * (1 + 4), deq),
            ("fake_quantize int4 g32 sym", n * 2 * isz, fq),
            ("fpx e3m2 encode", n * (isz + 1), enc),
            ("fpx e3m2 decode", n * (1 + 4), dec),
            ("pack 4-bit", n + n // 2, pack),
            ("unpack 4-bit", n + n // 2, unpack)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--shapes", default="4096x4096", help="NxK weight shapes")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--no-torchao", action="store_true")
    p.add_argument("--quick", action="store_true", help="small shapes and few iterations (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()

    qp = None if args.no_torchao else torchao_ops()
    shapes = [(256, 512)] if args.quick else parse_shapes(args.shapes)
    iters = 3 if args.quick else 15
    report = Report("quantization primitives (vs torch expression / torchao)", args.device)
    print(f"# torchao: {'on' if qp else 'absent or off (pip install torchao==0.18.0 to compare)'}; "
          f"threads {torch.get_num_threads()}; lowbit CPU kernels {lowbit.build_info().get('cpu_kernels')}")
    for shape in shapes:
        w = torch.randn(*shape, device=args.device, dtype=getattr(torch, args.dtype))
        for name, nbytes, fns in cases(w, qp):
            t = {label: time_ms(fn, args.device, warmup=2, iters=iters) for label, fn in fns.items()}
            case = f"{name} {'x'.join(map(str, shape))}"
            for label in ("torch", "torchao"):
                if label in t:
                    report.add(case, label, t[label], "lowbit", t["lowbit"], nbytes)
            if len(t) == 1:
                print(f"{case:<40} | lowbit {t['lowbit']:9.4f} ms (no baseline here)")
    report.save(args.out)


if __name__ == "__main__":
    main()
