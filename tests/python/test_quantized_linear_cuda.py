"""CUDA kernels of the quantized linear ops against their CPU reference (the spec).

Each op runs on CUDA and, on .cpu() copies of the same tensors, on the CPU, where dispatch goes to
the reference kernel (csrc/cpu/quantized_linear_reference.cpp). Cases cover every path of
csrc/cuda/weight_only_linear.cu and csrc/cuda/int8_dynamic_linear.cu:

  weight-only  M <= 8 and K % 32 == 0: the fused GEMV (row tiles 1, 2, 4, 8);
               8 < M <= 256, bf16 / fp16, K % 32 == 0: the fused tensor-core GEMM, split-K when
               its tiles alone cannot fill the GPU; everything else (M > 256, float32 with M > 8,
               K % 32 != 0, uintx group_size % 32 != 0, a misaligned packed weight): dequantize +
               cuBLAS.
  int8 dynamic M > 16 with K, N multiples of 8: at::_int_mm; otherwise the dp4a kernel (16-byte
               vectors when K % 16 == 0, scalar otherwise).
Which path ran is asserted through lowbit.core.kernel_path_counts (the kernels record their choice),
with the profiler's kernel names as a second witness where the profiler names them.

What must hold:
  - int8_dynamic_activation_int8_linear is bit-identical to the CPU (same codes and scales, exact
    int32 sums, the same float32 epilogue).
  - weight-only ops with one-hot rows of x are bit-identical: every weight the kernels multiply is
    the reference's dequantized weight and the epilogue repeats the reference's roundings.
  - weight-only ops on random x agree within the float32 summation-order bound plus roundings of
    the output: |cuda - cpu| <= 3 * eps(dtype) * mag + 2 * K * 2^-24 * mag, where
    mag = |x| @ |W|^T + |bias| (float64). The first term is up to three roundings to the output
    dtype (GEMM result, int8's scale step, bias step) of sums that differ in their last float32
    bits; the second bounds the float32 accumulation-order difference (two sums of K products).
"""

import pytest
import torch

import lowbit
from lowbit.core import choose_qparams_affine, fpx_decode, fpx_encode, pack_uintx, quantize_affine

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(not lowbit.build_info()["cuda"], reason="lowbit was built without its CUDA kernels"),
]

CUDA = "cuda"
ops = torch.ops.lowbit
FLOAT_DTYPES = [torch.bfloat16, torch.float16, torch.float32]
# 1, 2, 7: GEMV; 16, 33: fused GEMM (bf16 / fp16); 257: dequantize + cuBLAS.
M_VALUES = [1, 2, 7, 16, 33, 257]
# (K, N): K % 32 == 0 takes the fused paths (512: 8 K steps, split-K at small M; 96: a half K
# step at the end; N = 99 / 40: partial column blocks); K = 72 is not chunked: fallback.
SHAPES = [(512, 99), (96, 40), (72, 24)]
FPX_FORMATS = [(3, 2), (2, 3), (2, 2), (2, 1), (1, 1), (1, 0), (3, 4), (5, 1)]


# ---- weights in each format (built with lowbit's own quantization ops, on the CPU) -----------


def int8_parts(w):
    k = w.shape[1]
    scale, zp = choose_qparams_affine(w, (1, k), "int8", "symmetric")
    return [quantize_affine(w, (1, k), scale, zp, "int8"), scale.reshape(-1)]


def uintx_parts(w, bits, group_size):
    n, k = w.shape
    qd = f"uint{bits}"
    scale, zp = choose_qparams_affine(w, (1, group_size), qd, "asymmetric", "int")
    codes = quantize_affine(w, (1, group_size), scale, zp, qd)
    return [pack_uintx(codes, bits).reshape(n, k * bits // 8), scale, zp]


def fpx_parts(w, ebits, mbits):
    n = w.shape[0]
    top = fpx_decode(torch.tensor([(1 << (ebits + mbits)) - 1], dtype=torch.uint8), ebits, mbits).item()
    scale = (w.abs().amax(1) / top).clamp_min(torch.finfo(torch.float32).tiny)
    codes = fpx_encode(w / scale[:, None], ebits, mbits)
    return [pack_uintx(codes, 1 + ebits + mbits).reshape(n, -1), scale]


class Case:
    """One op with its weight parts: call(x, bias) on x's device (parts moved there)."""

    def __init__(self, name, op, parts, extra=()):
        self.name, self.op, self.parts, self.extra = name, op, parts, tuple(extra)
        self.gpu_parts = None  # moved on first CUDA call

    def __call__(self, x, bias=None):
        if x.is_cuda and self.gpu_parts is None:
            self.gpu_parts = [p.to(CUDA) for p in self.parts]
        parts = self.gpu_parts if x.is_cuda else self.parts
        if bias is not None:
            bias = bias.to(x.device)
        return self.op(x, *parts, *self.extra, bias)


def weight_cases(k, n, gen, group_sizes=(32, 64), bits_list=range(1, 9), fpx_formats=FPX_FORMATS):
    w = torch.randn(n, k, generator=gen)
    cases = [Case("int8", ops.int8_weight_only_linear, int8_parts(w))]
    for bits in bits_list:
        for g in group_sizes:
            if k % g == 0:
                cases.append(Case(f"uint{bits}-g{g}", ops.uintx_weight_only_linear, uintx_parts(w, bits, g), (bits, g)))
    for e, m in fpx_formats:
        cases.append(Case(f"fp{1 + e + m}_e{e}m{m}", ops.fpx_weight_only_linear, fpx_parts(w, e, m), (e, m)))
    return cases


def dequantized(case, k, dtype):
    """W (N, K) as the reference sees it, from the reference op with x = I."""
    return case(torch.eye(k, dtype=dtype)).t()


def assert_within_bound(y, ref, x, w_deq, bias, what):
    """|y - ref| <= 3 * eps * mag + 2 * K * 2^-24 * mag (see the module docstring)."""
    assert y.device.type == "cuda" and y.dtype == ref.dtype and y.shape == ref.shape, what
    k = x.shape[-1]
    mag = x.double().abs().reshape(-1, k) @ w_deq.double().abs().t()
    if bias is not None:
        mag = mag + bias.double().abs()
    mag = mag.reshape(ref.shape)
    bound = 3 * torch.finfo(ref.dtype).eps * mag + 2 * k * 2.0**-24 * mag + 1e-30
    err = (y.cpu().double() - ref.double()).abs()
    bad = err > bound
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        pytest.fail(f"{what}: {int(bad.sum())} of {err.numel()} outside the bound; first at flat index {i}: "
                    f"cuda {y.cpu().reshape(-1)[i].item()!r} cpu {ref.reshape(-1)[i].item()!r} "
                    f"bound {bound.reshape(-1)[i].item():.3g}")


# ---- weight-only ops ------------------------------------------------------------------------


@pytest.mark.parametrize("k,n", SHAPES, ids=str)
@pytest.mark.parametrize("m", M_VALUES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_weight_only_matches_reference(k, n, m, dtype):
    gen = torch.Generator().manual_seed(1000 * k + m)
    x = torch.randn(m, k, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen)
    for case in weight_cases(k, n, gen, group_sizes=(32, 24, 16)):
        w_deq = dequantized(case, k, torch.float32)
        for b in (None, bias.to(dtype), bias):  # a float32 bias is cast to the input dtype, as the reference does
            ref = case(x, b)
            y = case(x.to(CUDA), b)
            assert_within_bound(y, ref, x, w_deq, b, f"{case.name} M={m} K={k} N={n} bias={b is not None}")


# One-hot rows of x: y[m] = W[:, k_m] (+ bias), exact. Row sets cycle through every k, so every
# weight of every chunk is checked on every path: (96, 99) with M = 1, 3, 8 (GEMV tiles 1, 4, 8),
# 40 (fused GEMM), 300 (dequantize + cuBLAS); (512, 260) with M = 40: split-K over 3 column tiles.
ONE_HOT = [((96, 99), (1, 3, 8, 40, 300)), ((512, 260), (8, 40))]


@pytest.mark.parametrize("shape,ms", ONE_HOT, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_weight_only_one_hot_rows_are_exact(shape, ms, dtype):
    k, n = shape
    gen = torch.Generator().manual_seed(k + n)
    bias = torch.randn(n, generator=gen).to(dtype)
    eye = torch.eye(k, dtype=dtype)
    for case in weight_cases(k, n, gen, group_sizes=(32,)):
        for b in (None, bias):
            ref = case(eye, b)  # (K, N): row k is W[:, k] through the reference's epilogue
            eye_gpu = eye.to(CUDA)
            for m in ms:
                for start in range(0, k, m):
                    idx = torch.arange(start, start + m) % k
                    y = case(eye_gpu[idx.to(CUDA)], b)
                    if not torch.equal(y.cpu(), ref[idx]):
                        diff = (y.cpu() != ref[idx]).nonzero()[0].tolist()
                        pytest.fail(f"{case.name} M={m} rows {start}..: first difference at (row, col) {diff}: "
                                    f"cuda {y[diff[0], diff[1]].item()!r} cpu {ref[idx][diff[0], diff[1]].item()!r}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_weight_only_3d_noncontiguous_and_misaligned_inputs(dtype):
    gen = torch.Generator().manual_seed(5)
    k, n = 256, 72
    bias = torch.randn(n, generator=gen)
    for case in weight_cases(k, n, gen, group_sizes=(64,), bits_list=(3, 4), fpx_formats=[(3, 2)]):
        w_deq = dequantized(case, k, torch.float32)
        for shape in [(2, 3, k), (4, 5, k), (1, 1, 300, k)]:  # M = 6 (GEMV), 20 (GEMM), 300 (fallback)
            x = torch.randn(shape, generator=gen).to(dtype)
            assert_within_bound(case(x.to(CUDA), bias), case(x, bias), x, w_deq, bias, f"{case.name} {shape}")
        x = torch.randn(k, 6, generator=gen).to(dtype)
        assert_within_bound(case(x.to(CUDA).t(), bias), case(x.t(), bias), x.t(), w_deq, bias, "transposed")
        flat = torch.randn(1 + 5 * k, generator=gen).to(dtype)
        x = flat[1:].view(5, k)  # contiguous, 2 or 4 bytes past an aligned start
        x_gpu = flat.to(CUDA)[1:].view(5, k)
        assert_within_bound(case(x_gpu, bias), case(x, bias), x, w_deq, bias, "misaligned start")


def test_weight_only_misaligned_packed_weight_takes_the_fallback():
    gen = torch.Generator().manual_seed(6)
    k, n, bits, g = 128, 40, 4, 32
    w = torch.randn(n, k, generator=gen)
    packed, scale, zp = uintx_parts(w, bits, g)
    x = torch.randn(3, k, generator=gen).to(torch.bfloat16)
    buf = torch.zeros(1 + packed.numel(), dtype=torch.uint8, device=CUDA)
    buf[1:] = packed.reshape(-1).to(CUDA)
    odd = buf[1:].view(n, -1)  # contiguous, one byte past an aligned start: no word loads
    y = ops.uintx_weight_only_linear(x.to(CUDA), odd, scale.to(CUDA), zp.to(CUDA), bits, g)
    ref = ops.uintx_weight_only_linear(x, packed, scale, zp, bits, g)
    w_deq = ops.uintx_weight_only_linear(torch.eye(k), packed, scale, zp, bits, g).t()
    assert_within_bound(y, ref, x.float(), w_deq, None, "misaligned packed weight")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_weight_only_empty_batch(dtype):
    gen = torch.Generator().manual_seed(7)
    for case in weight_cases(64, 24, gen, group_sizes=(32,), bits_list=(4,), fpx_formats=[(2, 2)]):
        y = case(torch.empty(0, 64, dtype=dtype, device=CUDA))
        assert y.shape == (0, 24) and y.dtype == dtype
        y = case(torch.empty(2, 0, 64, dtype=dtype, device=CUDA))
        assert y.shape == (2, 0, 24)


def test_weight_only_errors_match_the_reference():
    gen = torch.Generator().manual_seed(8)
    w = torch.randn(16, 64, generator=gen)
    q, s = int8_parts(w)
    x = torch.randn(2, 64, device=CUDA)
    with pytest.raises(RuntimeError, match="in_features"):
        ops.int8_weight_only_linear(torch.randn(2, 60, device=CUDA), q.to(CUDA), s.to(CUDA))
    with pytest.raises(RuntimeError, match="bias"):
        ops.int8_weight_only_linear(x, q.to(CUDA), s.to(CUDA), torch.randn(3, device=CUDA))
    with pytest.raises(RuntimeError, match="device"):
        ops.int8_weight_only_linear(x, q.to(CUDA), s)  # scale left on the CPU
    # e4m3 has the shape of an fpx format but is a torch-native float8: both devices reject it.
    packed = pack_uintx(torch.zeros(16 * 64, dtype=torch.uint8), 8).reshape(16, 64)
    for dev in ("cpu", CUDA):
        with pytest.raises(RuntimeError, match="torch-native float8"):
            ops.fpx_weight_only_linear(x.to(dev), packed.to(dev), torch.ones(16, device=dev), 4, 3)


def kernel_names(fn):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]


def paths_taken(fn, family):
    """The paths of op family `family` that fn() recorded (lowbit.core.kernel_path_counts deltas)."""
    before = lowbit.core.kernel_path_counts()
    fn()
    after = lowbit.core.kernel_path_counts()
    return {k.split("/", 1)[1]: after[k] - before[k] for k in after if k.startswith(family + "/") and after[k] != before[k]}


# (M, dtype, K, group_size, path, a kernel of that path) for uint4; K % 32 and group_size % 32 make
# the weight "chunked" (quantized_linear_paths.h).
WEIGHT_ONLY_PATHS = [
    (1, torch.bfloat16, 256, 32, "gemv", "gemv_kernel"),
    (8, torch.float32, 256, 32, "gemv", "gemv_kernel"),
    (9, torch.float16, 256, 32, "wmma", "gemm_kernel"),
    (256, torch.bfloat16, 256, 32, "wmma", "gemm_kernel"),
    (257, torch.bfloat16, 256, 32, "dequantize_cublas", "dequantize_kernel"),
    (9, torch.float32, 256, 32, "dequantize_cublas", "dequantize_kernel"),
    (1, torch.bfloat16, 72, 8, "dequantize_cublas", "dequantize_kernel"),   # K % 32 != 0
    (1, torch.bfloat16, 256, 16, "dequantize_cublas", "dequantize_kernel"),  # group_size % 32 != 0
]


@pytest.mark.parametrize("m,dtype,k,g,path,kernel", WEIGHT_ONLY_PATHS, ids=str)
def test_weight_only_path_selection(m, dtype, k, g, path, kernel):
    gen = torch.Generator().manual_seed(9)
    packed, scale, zp = [p.to(CUDA) for p in uintx_parts(torch.randn(64, k, generator=gen), 4, g)]
    x = torch.randn(m, k, device=CUDA, dtype=dtype)
    call = lambda: ops.uintx_weight_only_linear(x, packed, scale, zp, 4, g)  # noqa: E731
    assert paths_taken(call, "weight_only_linear") == {path: 1}
    assert lowbit.core.last_kernel_path("weight_only_linear") == path
    names = kernel_names(call)
    if names:  # the profiler names kernels on most setups; the counters above are what must hold
        assert any(kernel in name for name in names), names


def test_weight_only_path_selection_per_format():
    gen = torch.Generator().manual_seed(10)
    k, n = 256, 64
    for case in weight_cases(k, n, gen, group_sizes=(32,), bits_list=(4,), fpx_formats=[(3, 2)]):
        for m, dtype, path in [(4, torch.bfloat16, "gemv"), (64, torch.bfloat16, "wmma"),
                               (512, torch.float16, "dequantize_cublas"), (0, torch.bfloat16, "empty")]:
            x = torch.randn(m, k, device=CUDA, dtype=dtype)
            assert paths_taken(lambda: case(x), "weight_only_linear") == {path: 1}, (case.name, m)


def test_weight_only_misaligned_packed_weight_is_recorded_as_dequantize():
    gen = torch.Generator().manual_seed(11)
    k, n, bits, g = 128, 40, 4, 32
    packed, scale, zp = uintx_parts(torch.randn(n, k, generator=gen), bits, g)
    buf = torch.zeros(1 + packed.numel(), dtype=torch.uint8, device=CUDA)
    buf[1:] = packed.reshape(-1).to(CUDA)
    odd = buf[1:].view(n, -1)
    x = torch.randn(3, k, device=CUDA, dtype=torch.bfloat16)
    call = lambda: ops.uintx_weight_only_linear(x, odd, scale.to(CUDA), zp.to(CUDA), bits, g)  # noqa: E731
    assert paths_taken(call, "weight_only_linear") == {"dequantize_cublas": 1}


# ---- int8 dynamic activations -----------------------------------------------------------------

# (K, N): both multiples of 16 (dp4a vectors; cuBLAS above M = 16), K % 8 only (scalar dp4a path
# at M <= 16, cuBLAS above), and odd K / N (scalar path at every M).
INT8DQ_SHAPES = [(512, 96), (40, 24), (36, 20), (4096, 1024)]


@pytest.mark.parametrize("k,n", INT8DQ_SHAPES, ids=str)
@pytest.mark.parametrize("m", M_VALUES + [17])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_int8_dynamic_is_bit_exact(k, n, m, dtype):
    if k == 4096 and m not in (1, 33):
        pytest.skip("the large shape runs at one GEMV and one cuBLAS size")
    gen = torch.Generator().manual_seed(k + n + m)
    w = torch.randn(n, k, generator=gen)
    q, s = int8_parts(w)
    x = (torch.randn(m, k, generator=gen) * torch.rand(m, 1, generator=gen) * 4).to(dtype)
    x[0, :3] = 0  # a few exact zeros; rows of different ranges
    bias = torch.randn(n, generator=gen)
    for b in (None, bias, bias.to(dtype)):
        ref = ops.int8_dynamic_activation_int8_linear(x, q, s, b)
        y = ops.int8_dynamic_activation_int8_linear(x.to(CUDA), q.to(CUDA), s.to(CUDA),
                                                    None if b is None else b.to(CUDA))
        assert y.dtype == dtype and y.shape == ref.shape
        assert torch.equal(y.cpu(), ref), f"M={m} K={k} N={n}: max diff {(y.cpu().double() - ref.double()).abs().max()}"


# (M, K, N, path): at::_int_mm needs M > 16 and K, N multiples of 8 (quantized_linear_paths.h).
INT8DQ_PATHS = [(1, 64, 64, "dp4a"), (16, 64, 64, "dp4a"), (17, 64, 64, "int_mm"), (17, 36, 64, "dp4a"),
                (17, 64, 20, "dp4a"), (300, 512, 96, "int_mm"), (0, 64, 64, "empty")]


@pytest.mark.parametrize("m,k,n,path", INT8DQ_PATHS, ids=str)
def test_int8_dynamic_path_selection(m, k, n, path):
    gen = torch.Generator().manual_seed(m + k + n)
    q, s = [p.to(CUDA) for p in int8_parts(torch.randn(n, k, generator=gen))]
    x = torch.randn(m, k, device=CUDA, dtype=torch.bfloat16)
    call = lambda: ops.int8_dynamic_activation_int8_linear(x, q, s)  # noqa: E731
    assert paths_taken(call, "int8_dynamic_linear") == {path: 1}
    assert lowbit.core.last_kernel_path("int8_dynamic_linear") == path
    if path != "empty":
        names = kernel_names(call)
        if names:
            assert any("int8_dot_kernel" in name for name in names) == (path == "dp4a"), names


def test_int8_dynamic_3d_zero_rows_and_empty():
    gen = torch.Generator().manual_seed(11)
    w = torch.randn(48, 64, generator=gen)
    q, s = int8_parts(w)
    qg, sg = q.to(CUDA), s.to(CUDA)
    for shape in [(2, 3, 64), (3, 7, 64)]:  # M = 6 (dp4a), 21 (cuBLAS)
        x = torch.randn(shape, generator=gen).to(torch.bfloat16)
        x[0, 0] = 0  # an all-zero row: its scale is eps
        assert torch.equal(ops.int8_dynamic_activation_int8_linear(x.to(CUDA), qg, sg).cpu(),
                           ops.int8_dynamic_activation_int8_linear(x, q, s))
    y = ops.int8_dynamic_activation_int8_linear(torch.empty(0, 64, device=CUDA), qg, sg)
    assert y.shape == (0, 48)


# ---- torch.compile ------------------------------------------------------------------------------


def test_torch_compile_fullgraph_matches_eager():
    gen = torch.Generator().manual_seed(12)
    k, n = 256, 128
    w = torch.randn(n, k, generator=gen)
    u = [p.to(CUDA) for p in uintx_parts(w, 4, 64)]
    f = [p.to(CUDA) for p in fpx_parts(w, 3, 2)]
    i8 = [p.to(CUDA) for p in int8_parts(w)]
    bias = torch.randn(n, device=CUDA, dtype=torch.bfloat16)

    def block(x):
        h = ops.uintx_weight_only_linear(x, *u, 4, 64, bias)
        h = h + ops.fpx_weight_only_linear(x, *f, 3, 2, bias)
        h = h + ops.int8_weight_only_linear(x, *i8, bias)
        return h + ops.int8_dynamic_activation_int8_linear(x, *i8, bias)

    compiled = torch.compile(block, fullgraph=True)
    for shape in [(1, k), (2, 16, k)]:  # GEMV and fused-GEMM sized batches
        x = torch.randn(shape, device=CUDA, dtype=torch.bfloat16)
        eager = block(x)
        out = compiled(x)
        assert out.shape == eager.shape
        # The custom ops run as they are; inductor may fuse the bf16 adds differently (each add
        # rounds to bf16 either way), so allow one bf16 rounding of the sum.
        torch.testing.assert_close(out, eager, rtol=2**-7, atol=1e-2)
