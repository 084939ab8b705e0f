"""One small call of every lowbit CUDA kernel path, for compute-sanitizer (benchmarks/gpu_check.sh
tier 1) and as a quick "does anything run at all" check.

Each case runs its op on --device, synchronizes, and compares with the CPU result of the same op
on the same inputs (loosely: exactness is the tests' job; here a wrong-shape or garbage result is
a failure too). Every case runs even if others fail. At the end: one line per case, the lowbit ops
that have a CUDA kernel and no case here ("uncovered": add one), and the kernel paths recorded.
Exit status 1 if any case failed.

    compute-sanitizer --tool memcheck python3 benchmarks/gpu_smoke.py --device cuda
    python3 benchmarks/gpu_smoke.py --device cpu       # the plumbing, on any machine

Under compute-sanitizer set PYTORCH_NO_CUDA_MEMORY_CACHING=1 (gpu_check.sh does): every tensor is
then its own cudaMalloc, so an access past a tensor's end is outside any allocation and memcheck
sees it (inside the caching allocator's pooled blocks it would not).
"""

import argparse
import sys
import time
import traceback

import torch

import lowbit
from lowbit.core import (
    cast_to_float8,
    choose_qparams_affine,
    dequantize_affine,
    fpx_decode,
    fpx_encode,
    pack_uintx,
    quantize_affine,
    scaled_mm,
    unpack_uintx,
)

ops = torch.ops.lowbit
CASES = []  # (name, ops covered, fn(device) -> list of (result on device, result on CPU))


def case(name, covers):
    def register(fn):
        CASES.append((name, covers, fn))
        return fn
    return register


def offset(t):
    """t's values in a contiguous view one element into a fresh allocation (not 16-byte aligned)."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    buf[1:].view(torch.uint8).copy_(t.contiguous().reshape(-1).view(torch.uint8))
    return buf[1:].view(t.shape)


def both(fn, *tensors, device):
    """(fn on the device copies, fn on the CPU copies) of the same inputs."""
    return fn(*[t.to(device) for t in tensors]), fn(*[t.cpu() for t in tensors])


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


@case("cast_to_float8 tensor/row/column, aligned + offset", ["cast_to_float8"])
def _cast(device):
    out = []
    for dtype in (torch.bfloat16, torch.float32):
        x = randn(67, 1030, dtype=dtype)
        for g in ("tensor", "row", "column"):
            for view in (lambda t: t, offset):
                out.append(both(lambda t: cast_to_float8(view(t), torch.float8_e4m3fn, g)[0].float(), x, device=device))
    return out


@case("fpx encode / decode", ["fpx_encode", "fpx_decode"])
def _fpx(device):
    x = randn(33, 520)
    codes = fpx_encode(x, 3, 2)
    return [both(lambda t: fpx_encode(t, 3, 2), x, device=device),
            both(lambda t: fpx_encode(offset(t), 2, 2), x, device=device),
            both(lambda c: fpx_decode(c, 3, 2, torch.bfloat16).float(), codes, device=device),
            both(lambda c: fpx_decode(offset(c), 3, 2).float(), codes, device=device)]


@case("affine qparams / quantize / dequantize (row, group, tensor, column)",
      ["choose_qparams_affine", "quantize_affine", "dequantize_affine"])
def _affine(device):
    out = []
    x = randn(64, 256, dtype=torch.bfloat16)
    for bs in ((1, 256), (1, 32), (64, 256), (64, 1), (8, 32)):
        def run(t, bs=bs):
            s, z = choose_qparams_affine(t, bs, "uint4", "asymmetric")
            q = quantize_affine(t, bs, s, z, "uint4")
            return dequantize_affine(q, bs, s, z, "uint4", output_dtype=torch.float32)
        out.append(both(run, x, device=device))
    out.append(both(lambda t: choose_qparams_affine(offset(t), (1, 256), "int8")[0], x, device=device))
    return out


@case("pack / unpack uintx (1..8 bits)", ["pack_uintx", "unpack_uintx"])
def _pack(device):
    out = []
    for bits in range(1, 9):
        codes = torch.randint(0, 1 << bits, (4099,), generator=torch.Generator().manual_seed(bits), dtype=torch.uint8)
        out.append(both(lambda c, b=bits: unpack_uintx(pack_uintx(c, b), b, c.numel()), codes, device=device))
        out.append(both(lambda c, b=bits: pack_uintx(offset(c), b), codes, device=device))
    return out


def fp8_operands(m, n, k, rowwise):
    qa, sa = cast_to_float8(randn(m, k, seed=1), torch.float8_e4m3fn, "row" if rowwise else "tensor")
    qb, sb = cast_to_float8(randn(k, n, seed=2), torch.float8_e4m3fn, "column" if rowwise else "tensor")
    return qa, qb, sa, sb


@case("scaled_mm tensorwise / rowwise, bias, float32 out, odd N, offset a, empty", ["scaled_mm"])
def _scaled_mm(device):
    if device != "cpu" and torch.cuda.get_device_capability() < (8, 9):
        raise RuntimeError("skipped: no fp8 tensor cores (sm_89+)")
    out = []
    emulate = device == "cpu"
    for rowwise in (False, True):
        for (m, n, k), out_dtype, with_bias in [((128, 256, 512), torch.bfloat16, True), ((100, 72, 40), torch.float32, True),
                                                 ((64, 48, 96), torch.float16, False), ((0, 32, 64), torch.bfloat16, True),
                                                 ((8, 32, 0), torch.float32, True)]:
            qa, qb, sa, sb = fp8_operands(m, n, k, rowwise)
            bias = randn(n, seed=3).to(out_dtype) if with_bias else None
            def run(a, b, s_a, s_b, *rest, o=out_dtype):
                return scaled_mm(a, b, s_a, s_b, rest[0] if rest else None, o, emulate=a.device.type == "cpu").float()
            args = [qa, qb, sa, sb] + ([bias] if bias is not None else [])
            out.append(both(run, *args, device=device))
        qa, qb, sa, sb = fp8_operands(33, 64, 128, rowwise)
        out.append(both(lambda a, b, s_a, s_b: scaled_mm(offset(a), b, s_a, s_b, None, torch.float32,
                                                         emulate=a.device.type == "cpu"), qa, qb, sa, sb, device=device))
    return out


def weight_only_parts(fmt, n, k):
    w = randn(n, k, seed=4)
    if fmt == "int8":
        s, z = choose_qparams_affine(w, (1, k), "int8", "symmetric")
        return ops.int8_weight_only_linear, [quantize_affine(w, (1, k), s, z, "int8"), s.reshape(-1)], ()
    if fmt == "uint4":
        g = 32 if k % 32 == 0 else 16  # group_size % 32 != 0: the fused kernels cannot take it
        s, z = choose_qparams_affine(w, (1, g), "uint4", "asymmetric", "int")
        codes = quantize_affine(w, (1, g), s, z, "uint4")
        return ops.uintx_weight_only_linear, [pack_uintx(codes, 4).reshape(n, k // 2), s, z], (4, g)
    scale = (w.abs().amax(1) / 28.0).clamp_min(1e-30)  # fp6_e3m2's largest value is 28
    codes = fpx_encode(w / scale[:, None], 3, 2)
    return ops.fpx_weight_only_linear, [pack_uintx(codes, 6).reshape(n, -1), scale], (3, 2)


@case("weight-only int8 / uint4 / fp6: gemv, wmma, dequantize+cuBLAS", ["int8_weight_only_linear",
      "uintx_weight_only_linear", "fpx_weight_only_linear"])
def _weight_only(device):
    out = []
    n, k = 72, 256
    for fmt in ("int8", "uint4", "fp6"):
        op, parts, extra = weight_only_parts(fmt, n, k)
        bias = randn(n, seed=5, dtype=torch.bfloat16)
        for m in (1, 5, 40, 300):  # gemv (row tiles 1 and 8), wmma, dequantize + cuBLAS
            x = randn(m, k, seed=m, dtype=torch.bfloat16)
            out.append(both(lambda x_, b_, *p: op(x_, *p, *extra, b_).float(), x, bias, *parts, device=device))
        x = randn(3, k, seed=6)
        out.append(both(lambda x_, *p: op(x_, *p, *extra, None).float(), x, *parts, device=device))  # float32 gemv
    op, parts, extra = weight_only_parts("uint4", n, 144)  # K % 32 != 0: the dequantize path at M = 2
    out.append(both(lambda x_, *p: op(x_, *p, *extra, None).float(), randn(2, 144, dtype=torch.bfloat16), *parts,
                    device=device))
    return out


@case("int8 dynamic activation: dp4a (vector, scalar), _int_mm", ["int8_dynamic_activation_int8_linear"])
def _int8_dynamic(device):
    out = []
    for m, k, n in ((1, 512, 96), (5, 36, 20), (40, 512, 96)):
        w = randn(n, k, seed=7)
        s, z = choose_qparams_affine(w, (1, k), "int8", "symmetric")
        q = quantize_affine(w, (1, k), s, z, "int8")
        x = randn(m, k, seed=8, dtype=torch.bfloat16)
        out.append(both(lambda x_, q_, s_: ops.int8_dynamic_activation_int8_linear(x_, q_, s_.reshape(-1)).float(),
                        x, q, s, device=device))
    return out


@case("AdamW 8-bit / 4-bit / fp8 steps", ["adamw_lowbit_step_", "adamw_lowbit_init_state"])
def _adamw(device):
    out = []
    for name in ("AdamW8bit", "AdamW4bit", "AdamWFp8"):
        cls = getattr(lowbit.optim, name, None)
        if cls is None:
            continue

        def run(w0, g0, cls=cls):
            p = torch.nn.Parameter(w0.clone())
            opt = cls([p], lr=1e-2)
            for _ in range(2):
                p.grad = g0.clone()
                opt.step()
            return p.detach()
        out.append(both(run, randn(64, 160, seed=9), randn(64, 160, seed=10), device=device))
    return out


@case("2:4: prune (tiles, rows), compress / decompress, cuSPARSELt GEMM (padded tokens), training linears",
      ["prune_2_4", "compress_2_4", "decompress_2_4", "semi_sparse_mm"])
def _sparse_2_4(device):
    out = []
    w = randn(256, 384, dtype=torch.bfloat16, seed=11)
    for algorithm in ("largest_abs", "largest", "largest_abs_rows"):
        out.append(both(lambda t, a=algorithm: lowbit.core.prune_2_4(t, a)[0].float(), w, device=device))
        out.append(both(lambda t, a=algorithm: lowbit.core.prune_2_4(offset(t), a)[1].float(), w, device=device))
    pruned = lowbit.core.prune_2_4(w)[0]
    out.append(both(lambda t: lowbit.core.decompress_2_4(*lowbit.core.compress_2_4(t)).float(), pruned, device=device))
    x = randn(200, 384, dtype=torch.bfloat16, seed=12)  # 200 tokens: padded to 256 inside the GEMM
    bias = randn(256, dtype=torch.bfloat16, seed=13)
    out.append(both(lambda p_, x_, b_: ops.semi_sparse_mm(p_, x_.t(), b_, True).float(), pruned, x, bias, device=device))
    wt = randn(256, 384, seed=14)  # a float32 master weight, bf16 compute
    for op in (ops.semi_sparse_linear, ops.semi_sparse_activation_linear):
        def train(x_, w_, op=op):
            x_ = x_.clone().requires_grad_()
            w_ = w_.clone().requires_grad_()
            y = op(x_ if x_.device.type != "cpu" else x_.float(), w_, None, "largest_abs", "masked")
            y.float().square().mean().backward()
            return torch.cat([y.float().flatten(), x_.grad.float().flatten(), w_.grad.float().flatten()])
        out.append(both(train, x, wt, device=device))
    return out


def close(got, ref):
    got, ref = got.detach().cpu().double(), ref.detach().cpu().double()
    if got.shape != ref.shape:
        return f"shape {tuple(got.shape)} != {tuple(ref.shape)}"
    if got.numel() == 0:
        return None
    finite = torch.isfinite(ref)
    if not torch.equal(torch.isfinite(got), finite):
        return "non-finite values differ"
    err = ((got - ref)[finite].norm() / ref[finite].norm().clamp_min(1e-30)).item()
    return None if err < 2e-2 else f"relative error {err:.3g}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = args.device
    print(f"# gpu_smoke on {device}: lowbit {lowbit.__version__} {lowbit.build_info()}", flush=True)
    lowbit.core.reset_kernel_path_counts()
    failed, covered = 0, set()
    for name, covers, fn in CASES:
        t0 = time.perf_counter()
        try:
            pairs = fn(device)
            if device != "cpu":
                torch.cuda.synchronize()
            problems = [msg for msg in (close(g, r) for g, r in pairs) if msg]
            status = "ok" if not problems else "WRONG: " + "; ".join(problems[:3])
            covered.update(covers)
        except Exception as e:  # keep going: one broken kernel must not hide the others
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            status = msg if msg.startswith("skipped") else f"ERROR: {type(e).__name__}: {msg}"
            if not msg.startswith("skipped"):
                traceback.print_exc()
        if status.startswith(("WRONG", "ERROR")):
            failed += 1
        print(f"{status.split(':')[0]:<8} {name} ({time.perf_counter() - t0:.1f} s){'' if status == 'ok' else ': ' + status}",
              flush=True)
    if device != "cpu":
        with_cuda = sorted(n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names()
                           if n.startswith("lowbit::") and torch._C._dispatch_has_kernel_for_dispatch_key(n, "CUDA"))
        uncovered = [n for n in with_cuda if n not in covered]
        print(f"# lowbit ops with a CUDA kernel: {len(with_cuda)}; uncovered here: {', '.join(uncovered) or 'none'}")
    paths = {k: v for k, v in lowbit.core.kernel_path_counts().items() if v}
    print("# kernel paths taken: " + ", ".join(f"{k} x{v}" for k, v in sorted(paths.items())))
    print(f"# gpu_smoke: {len(CASES) - failed} of {len(CASES)} cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
