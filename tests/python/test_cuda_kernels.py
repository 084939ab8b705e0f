"""CUDA kernels of lowbit's core ops against their CPU reference kernels, bit for bit.

Every op here has one definition of its numerics (csrc/core/*.h) that the CPU and the CUDA
kernel both call, so on the same input the two must agree exactly: outputs are compared as raw
bytes (float8 too), scales and zero points included. Inputs cover several shapes (odd lengths,
empty, long rows that take the block-per-row paths, tensors large enough for several grid-stride
iterations), the three input dtypes, non-contiguous and misaligned views (the scalar, non-vector
paths), and edge values: zeros, -0.0, +-max, exact rounding ties, subnormals, NaN and inf.

Documented differences: on CUDA, fpx_decode and dequantize_affine decode a code outside the
format (bits above fpX's width, an int4 code outside -8..7) to NaN, and pack_uintx masks codes to
`bits`; the CPU reference raises instead (an error on CUDA would need a host sync).
"""

import pytest
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
    unpack_uintx,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(not lowbit.build_info()["cuda"], reason="lowbit was built without its CUDA kernels"),
]

CUDA = "cuda"
FLOAT_DTYPES = [torch.float32, torch.bfloat16, torch.float16]
FP8_DTYPES = [torch.float8_e4m3fn, torch.float8_e5m2]
_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def raw(t: torch.Tensor) -> torch.Tensor:
    """The bytes of t as integers of its element size (-0.0 and NaN payloads included)."""
    t = t.detach().cpu().contiguous().reshape(-1)
    return t.view(_INT_OF_SIZE[t.element_size()])


def assert_same_bits(cuda_out: torch.Tensor, cpu_out: torch.Tensor, what: str = "") -> None:
    """Equal dtype, shape and bits. float8 and integer outputs compare every byte; wider floats
    compare every bit of every non-NaN value and require NaN at the same places: a NaN that
    arithmetic creates (inf - inf, 0 * inf) has a different payload on x86 and on the GPU."""
    assert cuda_out.device.type == "cuda", what
    assert cuda_out.dtype == cpu_out.dtype, f"{what}: dtype {cuda_out.dtype} != {cpu_out.dtype}"
    assert cuda_out.shape == cpu_out.shape, f"{what}: shape {tuple(cuda_out.shape)} != {tuple(cpu_out.shape)}"
    a, b = raw(cuda_out), raw(cpu_out)
    if cpu_out.is_floating_point() and cpu_out.element_size() > 1:
        nan_a = cuda_out.detach().cpu().reshape(-1).isnan()
        nan_b = cpu_out.reshape(-1).isnan()
        differ = (nan_a != nan_b) | (~nan_b & (a != b))
    else:
        differ = a != b
    if bool(differ.any()):
        bad = differ.nonzero().reshape(-1)
        i = int(bad[0])
        pytest.fail(
            f"{what}: {bad.numel()} of {a.numel()} elements differ; first at flat index {i}: "
            f"cuda {cuda_out.detach().cpu().reshape(-1)[i].float().item()!r} (bits {int(a[i])}) vs "
            f"cpu {cpu_out.reshape(-1)[i].float().item()!r} (bits {int(b[i])})"
        )


def random_input(shape, dtype, gen, scale=1.0) -> torch.Tensor:
    """Normal values with a wide spread of magnitudes (a log-uniform factor over 2^-8..2^8)."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    x = x * torch.exp2(torch.empty(shape, dtype=torch.float64).uniform_(-8, 8, generator=gen))
    return (x * scale).to(dtype)


def edge_values(dtype) -> torch.Tensor:
    """Zeros, signed zero, the dtype's extremes, subnormals, rounding ties of small formats."""
    info = torch.finfo(dtype)
    vals = [0.0, -0.0, 1.0, -1.0, info.max, -info.max, info.tiny, -info.tiny, info.tiny / 4, -info.smallest_normal / 8]
    # Exact ties for 1-3 mantissa bits (1 + k/2^(m+1)), and between e4m3 subnormals (odd * 2^-10).
    vals += [1.0625, 1.1875, 1.125, 1.375, 2.5, 3.5, -1.0625, 0.75, 2.0**-10 * 3, 2.0**-10 * 5, -(2.0**-10)]
    return torch.tensor(vals, dtype=torch.float64).to(dtype)


def offset_view(t: torch.Tensor) -> torch.Tensor:
    """t's values as a contiguous view that starts one element into a fresh allocation, so its data
    is not 16-byte aligned: the kernels' scalar (non-vectorized) branches. Unlike .contiguous() of
    a strided view, which is a fresh, aligned copy, this reaches them."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    buf[1:].view(torch.uint8).copy_(t.contiguous().reshape(-1).view(torch.uint8))  # bytes: any dtype
    return buf[1:].view(t.shape)


def views(x: torch.Tensor):
    """(name, view on the CPU, the same view on the GPU) for x itself and, where its shape allows,
    non-contiguous and misaligned views (taken on each device: .to() would make them contiguous)."""
    x_gpu = x.to(CUDA)
    cases = [("contiguous", lambda t: t)]
    if x.numel() > 0:
        cases.append(("offset (contiguous, misaligned)", offset_view))
    if x.dim() >= 2 and x.shape[-1] > 1:
        cases.append(("sliced (misaligned start)", lambda t: t[..., 1:]))
        cases.append(("transposed", lambda t: t.transpose(-1, -2)))
    if x.dim() >= 1 and x.shape[0] > 1:
        cases.append(("strided", lambda t: t[::2]))
    return [(name, f(x), f(x_gpu)) for name, f in cases]


# ---- float8 cast -----------------------------------------------------------------------

# 1-D inputs are per-tensor only; (5, 1031) and (3, 2, 4100) take the block-per-row kernels;
# (1024, 1030) is large enough for several grid-stride iterations.
FP8_SHAPES = [(0,), (1,), (7,), (1037,), (4, 0, 8), (1, 1), (33, 65), (16, 128), (5, 1031), (3, 2, 4100), (1024, 1030)]
GRANULARITIES = ["tensor", "row", "column"]


def check_cast(x_cpu: torch.Tensor, fp8, granularity, pow2, what="", x_gpu=None):
    ref_data, ref_scale = cast_to_float8(x_cpu, fp8, granularity, power_of_2_scale=pow2)
    x_gpu = x_cpu.to(CUDA) if x_gpu is None else x_gpu
    data, scale = cast_to_float8(x_gpu, fp8, granularity, power_of_2_scale=pow2)
    assert_same_bits(scale, ref_scale, f"{what} scale")
    assert_same_bits(data, ref_data, f"{what} data")


@pytest.mark.parametrize("shape", FP8_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("fp8", FP8_DTYPES, ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("pow2", [False, True])
def test_cast_to_float8_random(shape, dtype, fp8, granularity, pow2, rng):
    if granularity != "tensor" and (len(shape) < 2 or 0 in shape):
        pytest.skip("row / column need 2 dims; empty rows are checked in test_cast_to_float8_empty_rows")
    x = random_input(shape, dtype, rng)
    for name, v, v_gpu in views(x):
        check_cast(v, fp8, granularity, pow2, f"{granularity} {name}", v_gpu)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("fp8", FP8_DTYPES, ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("pow2", [False, True])
def test_cast_to_float8_edge_values(dtype, fp8, granularity, pow2):
    e = edge_values(dtype)
    n = e.numel()
    # Row 0: the edge values; row 1: all zeros (scale from the amax floor); row 2: exact ties
    # (per row with e4m3 and power_of_2_scale its amax 448 gives scale 1); row 3: tiny values
    # only (subnormal fp8 outputs); then the same with NaN, all NaN, and with +-inf mixed in
    # (amax skips them on both devices; +-inf saturates to +-max, NaN stays NaN).
    fill = torch.full((n - e[10:].numel() - 1,), 0.5, dtype=dtype)
    ties = torch.cat([e[10:], fill, torch.tensor([448.0], dtype=dtype)])
    tiny = (e[10:].abs() * 2.0**-8).to(dtype)
    tiny = torch.cat([tiny, torch.full((n - tiny.numel(),), 2.0**-12, dtype=dtype)])
    x = torch.stack([e, torch.zeros(n, dtype=dtype), ties, tiny])
    check_cast(x, fp8, granularity, pow2, "edge")
    with_nan = x.clone()
    with_nan[:, 3] = float("nan")
    check_cast(with_nan, fp8, granularity, pow2, "edge + NaN")
    all_nan = torch.full((4, 8), float("nan"), dtype=dtype)
    check_cast(all_nan, fp8, granularity, pow2, "all NaN")
    with_inf = x.clone()
    with_inf[1, 2] = float("inf")
    with_inf[2, 5] = float("-inf")
    check_cast(with_inf, fp8, granularity, pow2, "edge + inf")


@pytest.mark.parametrize("granularity", ["row", "column"])
def test_cast_to_float8_empty_rows(granularity):
    # Rows of zero length (row) or zero rows (column): every scale comes from the amax floor.
    shape = (3, 0) if granularity == "row" else (0, 5)
    data, scale = cast_to_float8(torch.empty(shape, device=CUDA), torch.float8_e4m3fn, granularity)
    assert data.shape == shape and data.dtype == torch.float8_e4m3fn
    assert scale.shape == ((3, 1) if granularity == "row" else (1, 5))
    floor = torch.tensor(1e-12, dtype=torch.float32) / 448.0
    assert torch.equal(scale.cpu(), floor.expand(scale.shape))


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_cast_to_float8_captures_in_cuda_graph(granularity):
    # A host sync (.item(), a host copy of amax) is an error during graph capture, so a
    # successful capture and replay shows the op keeps amax and scale on the device.
    gen = torch.Generator().manual_seed(7)
    x = random_input((256, 520), torch.bfloat16, gen).to(CUDA)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            cast_to_float8(x, torch.float8_e4m3fn, granularity)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        data, scale = cast_to_float8(x, torch.float8_e4m3fn, granularity)
    new_x = random_input((256, 520), torch.bfloat16, gen) * 3
    x.copy_(new_x)
    graph.replay()
    torch.cuda.synchronize()
    ref_data, ref_scale = cast_to_float8(new_x, torch.float8_e4m3fn, granularity)
    assert_same_bits(scale, ref_scale, "replayed scale")
    assert_same_bits(data, ref_data, "replayed data")


# ---- fpx -------------------------------------------------------------------------------

FPX_FORMATS = [
    (e, m) for e in range(1, 8) for m in range(0, 8 - e) if (e, m) not in ((4, 3), (5, 2))
]


def fpx_special_inputs(ebits, mbits) -> torch.Tensor:
    """Every representable value, every midpoint between neighbours (exact ties), values just
    beside the midpoints, and NaN / inf / float32 extremes."""
    codes = torch.arange(1 << (ebits + mbits), dtype=torch.uint8)
    vals = fpx_decode(codes, ebits, mbits).double()  # magnitudes, increasing
    mids = (vals[1:] + vals[:-1]) / 2
    f32 = torch.finfo(torch.float32)
    m32 = mids.float()
    beside = torch.cat([torch.nextafter(m32, torch.tensor(0.0)), torch.nextafter(m32, torch.tensor(1e30))])
    top = vals[-1]
    special = torch.tensor(
        [0.0, -0.0, float("inf"), float("-inf"), float("nan"), f32.max, -f32.max, f32.tiny, 1e-45, top * 1.25, top * 2],
        dtype=torch.float64,
    )
    mags = torch.cat([vals, mids, beside.double(), special])
    return torch.cat([mags, -mags]).float()


@pytest.mark.parametrize("ebits,mbits", FPX_FORMATS, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_fpx_encode(ebits, mbits, dtype, rng):
    inputs = [fpx_special_inputs(ebits, mbits).to(dtype)]
    for scale in (1e-3, 1.0, 1e3):
        inputs.append(random_input((37, 129), dtype, rng, scale))
    inputs.append(random_input((300, 1000), dtype, rng))
    for x in inputs:
        for name, v, v_gpu in views(x):
            assert_same_bits(fpx_encode(v_gpu, ebits, mbits), fpx_encode(v, ebits, mbits), f"encode {name}")


@pytest.mark.parametrize("ebits,mbits", FPX_FORMATS, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_fpx_decode(ebits, mbits, dtype):
    width = 1 + ebits + mbits
    codes = torch.arange(256, dtype=torch.uint8).repeat(5)[:1283]  # odd length
    valid = codes & ((1 << width) - 1)
    ref = fpx_decode(valid, ebits, mbits, dtype)
    assert_same_bits(fpx_decode(valid.to(CUDA), ebits, mbits, dtype), ref, "decode")
    # Out-of-range codes decode to NaN on CUDA (the CPU reference rejects them).
    expected = torch.where(codes == valid, ref, torch.full_like(ref, float("nan")))
    assert_same_bits(fpx_decode(codes.to(CUDA), ebits, mbits, dtype), expected, "decode of out-of-range codes")
    for name, v, v_gpu in views(valid[:1280].reshape(40, 32)):
        assert_same_bits(fpx_decode(v_gpu, ebits, mbits, dtype), fpx_decode(v, ebits, mbits, dtype), name)
    if width < 8:
        with pytest.raises(RuntimeError, match="does not fit"):
            fpx_decode(codes, ebits, mbits, dtype)


# ---- affine ----------------------------------------------------------------------------

QDTYPES = [f"int{b}" for b in range(1, 9)] + [f"uint{b}" for b in range(1, 9)]
SCHEMES = [("symmetric", "int"), ("asymmetric", "int"), ("asymmetric", "float")]
AFFINE_DTYPES = FLOAT_DTYPES + [torch.float64]

# (shape, block sizes). Covered paths: warp per contiguous run (per-row, per-group), block per
# run ((8, 4096) per-row), the general atomic path with contiguous runs (per-tensor, (4, 32768)
# per-row) and with the BlockIndexer (per-column, 2-D tiles, 3-D tiles), one element per block.
AFFINE_CASES = [
    ((64, 256), [(64, 256), (1, 256), (1, 32), (1, 128), (64, 1), (8, 32), (1, 1)]),
    ((4, 6, 96), [(4, 6, 96), (1, 1, 96), (1, 1, 32), (1, 6, 96), (2, 3, 48), (4, 1, 1)]),
    ((8, 4096), [(1, 4096), (1, 2048)]),
    ((4, 32768), [(1, 32768), (4, 32768)]),
    ((7, 33), [(1, 33), (7, 1), (7, 33), (1, 11)]),
    ((0, 16), [(1, 16)]),
    ((), [()]),
]
AFFINE_PARAMS = [(shape, bs) for shape, sizes in AFFINE_CASES for bs in sizes]


def affine_input(shape, dtype, gen) -> torch.Tensor:
    x = random_input(shape, dtype, gen)
    flat = x.reshape(-1)
    if flat.numel() >= 64:
        # A few blocks' worth of edge values: zeros, signed zeros, a constant run, NaN, inf,
        # extreme magnitudes and subnormals.
        flat[:16] = 0.0
        flat[16:20] = -0.0
        flat[20:28] = 3.0
        flat[28] = float("nan")
        flat[40] = float("inf")
        flat[41] = float("-inf")
        flat[50] = torch.finfo(dtype).max
        flat[51] = -torch.finfo(dtype).max
        flat[52] = torch.finfo(dtype).tiny / 2
    return x


def check_affine(x, block_size, qdtype, mapping, domain, eps=None, scale_dtype=None, what="", x_gpu=None):
    bs = list(block_size)
    x_gpu = x.to(CUDA) if x_gpu is None else x_gpu
    ref_scale, ref_zp = choose_qparams_affine(x, bs, qdtype, mapping, domain, eps, scale_dtype)
    scale, zp = choose_qparams_affine(x_gpu, bs, qdtype, mapping, domain, eps, scale_dtype)
    assert_same_bits(scale, ref_scale, f"{what} scale")
    assert_same_bits(zp, ref_zp, f"{what} zero_point")
    # Both devices quantize with the reference's qparams, so only the kernels differ.
    ref_q = quantize_affine(x, bs, ref_scale, ref_zp, qdtype, domain)
    q = quantize_affine(x_gpu, bs, ref_scale.to(CUDA), ref_zp.to(CUDA), qdtype, domain)
    assert_same_bits(q, ref_q, f"{what} quantize")
    for out_dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        ref_dq = dequantize_affine(ref_q, bs, ref_scale, ref_zp, qdtype, domain, out_dtype)
        dq = dequantize_affine(ref_q.to(CUDA), bs, ref_scale.to(CUDA), ref_zp.to(CUDA), qdtype, domain, out_dtype)
        assert_same_bits(dq, ref_dq, f"{what} dequantize to {out_dtype}")


@pytest.mark.parametrize("shape,block_size", AFFINE_PARAMS, ids=str)
@pytest.mark.parametrize("mapping,domain", SCHEMES)
@pytest.mark.parametrize("dtype", AFFINE_DTYPES, ids=str)
def test_affine_layouts(shape, block_size, mapping, domain, dtype, rng):
    x = affine_input(shape, dtype, rng)
    for qdtype in ("int4", "uint4", "int8", "uint8"):
        check_affine(x, block_size, qdtype, mapping, domain, what=f"{qdtype}")


@pytest.mark.parametrize("qdtype", QDTYPES)
@pytest.mark.parametrize("mapping,domain", SCHEMES)
def test_affine_qdtypes(qdtype, mapping, domain, rng):
    x = affine_input((32, 128), torch.float32, rng)
    check_affine(x, (1, 32), qdtype, mapping, domain, what="per-group")
    check_affine(x, (32, 128), qdtype, mapping, domain, what="per-tensor")
    check_affine(x, (32, 128), qdtype, mapping, domain, eps=1e-3, scale_dtype=torch.bfloat16, what="eps, bf16 scale")
    for name, v, v_gpu in views(x):
        check_affine(v, (1, v.shape[-1]), qdtype, mapping, domain, what=f"per-row {name}", x_gpu=v_gpu)
        check_affine(v, (v.shape[0], 1), qdtype, mapping, domain, what=f"per-column {name}", x_gpu=v_gpu)


@pytest.mark.parametrize("mapping,domain", SCHEMES)
def test_affine_all_nan_block(mapping, domain):
    # A block holding NaN gets a NaN scale on both devices (the canonical NaN propagates through
    # the max, whatever the reduction order), and a block of NaNs the zero block's zero point.
    x = torch.randn(4, 64)
    x[1] = float("nan")
    check_affine(x, (1, 64), "int8", mapping, domain, what="per-row")
    check_affine(x, (1, 16), "uint4", mapping, domain, what="per-group")
    check_affine(x, (2, 1), "int4", mapping, domain, what="indexer")


@pytest.mark.parametrize("qdtype,storage", [("int4", torch.int8), ("uint3", torch.uint8)])
def test_affine_out_of_range_codes_dequantize_to_nan_on_cuda(qdtype, storage):
    codes = torch.arange(-128, 128, dtype=torch.int32).to(storage).reshape(16, 16)
    scale, zp = torch.full((16, 1), 0.5), torch.zeros(16, 1, dtype=torch.int32)
    with pytest.raises(RuntimeError, match="is outside qdtype"):
        dequantize_affine(codes, (1, 16), scale, zp, qdtype)
    out = dequantize_affine(codes.to(CUDA), (1, 16), scale.to(CUDA), zp.to(CUDA), qdtype).cpu()
    bits = int(qdtype[-1])
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if qdtype.startswith("int") else (0, (1 << bits) - 1)
    v = codes.to(torch.int32)
    inside = (v >= lo) & (v <= hi)
    assert torch.isnan(out[~inside]).all()
    assert torch.equal(out[inside], v[inside].float() * 0.5)


def test_affine_rounding_ties():
    # x / scale lands exactly on k + 0.5: rint rounds half to even on both devices.
    x = (torch.arange(-40, 40, dtype=torch.float32) * 0.25).reshape(4, 20)
    scale = torch.full((4, 1), 0.5)
    zp_int8, zp_uint8 = torch.zeros(4, 1, dtype=torch.int32), torch.full((4, 1), 128, dtype=torch.int32)
    for qdtype, zp in (("int8", zp_int8), ("uint8", zp_uint8)):
        ref = quantize_affine(x, (1, 20), scale, zp, qdtype)
        assert_same_bits(quantize_affine(x.to(CUDA), (1, 20), scale.to(CUDA), zp.to(CUDA), qdtype), ref, qdtype)
    zp_f = torch.full((4, 1), 0.125)
    ref = quantize_affine(x, (1, 20), scale, zp_f, "uint4", "float")
    q = quantize_affine(x.to(CUDA), (1, 20), scale.to(CUDA), zp_f.to(CUDA), "uint4", "float")
    assert_same_bits(q, ref, "float domain")


def test_dequantize_out_of_range_codes(rng):
    # int4 data held in int8 storage but outside [-8, 7]: neither device clamps.
    data = torch.randint(-128, 128, (16, 64), generator=rng, dtype=torch.int8)
    scale = torch.rand(16, 2, generator=rng) + 0.1
    zp = torch.randint(-8, 8, (16, 2), generator=rng, dtype=torch.int32)
    ref = dequantize_affine(data, (1, 32), scale, zp, "int4")
    assert_same_bits(dequantize_affine(data.to(CUDA), (1, 32), scale.to(CUDA), zp.to(CUDA), "int4"), ref, "int4")


# ---- bit packing -----------------------------------------------------------------------

PACK_NUMELS = [0, 1, 7, 8, 9, 1000, 4097, 100003]


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("numel", PACK_NUMELS)
def test_pack_unpack(bits, numel, rng):
    codes = torch.randint(0, 1 << bits, (numel,), generator=rng, dtype=torch.uint8)
    ref = pack_uintx(codes, bits)
    packed = pack_uintx(codes.to(CUDA), bits)
    assert_same_bits(packed, ref, "pack")
    assert_same_bits(unpack_uintx(packed, bits, numel), unpack_uintx(ref, bits, numel), "unpack")
    assert_same_bits(unpack_uintx(packed, bits, numel), codes, "round trip")
    # A prefix, and every code the bytes can hold (the tail bits are zero).
    assert_same_bits(unpack_uintx(packed, bits, numel // 2), unpack_uintx(ref, bits, numel // 2), "unpack prefix")
    full = ref.numel() * 8 // bits
    assert_same_bits(unpack_uintx(packed, bits, full), unpack_uintx(ref, bits, full), "unpack all")


@pytest.mark.parametrize("bits", range(1, 8))
def test_pack_masks_codes_on_cuda(bits, rng):
    # The CPU reference rejects codes >= 2^bits; CUDA packs their low `bits` bits.
    codes = torch.randint(0, 256, (1001,), generator=rng, dtype=torch.uint8)
    ref = pack_uintx(codes & ((1 << bits) - 1), bits)
    assert_same_bits(pack_uintx(codes.to(CUDA), bits), ref, "masked pack")
    with pytest.raises(RuntimeError, match="does not fit"):
        pack_uintx(codes, bits)


def test_pack_non_contiguous(rng):
    codes = torch.randint(0, 16, (64, 33), generator=rng, dtype=torch.uint8)
    for name, v, v_gpu in views(codes):
        assert_same_bits(pack_uintx(v_gpu, 4), pack_uintx(v, 4), name)
    packed = pack_uintx(codes, 6)
    assert_same_bits(unpack_uintx(packed.to(CUDA)[1:], 6, 100), unpack_uintx(packed[1:], 6, 100), "offset packed")


# ---- contiguous but misaligned inputs ----------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_offset_inputs_take_the_scalar_paths(dtype, rng):
    """Every kernel family on inputs that are contiguous but start one element past an aligned
    address (flat[1:].view(...)), against the CPU on the same views: the vectorized branches need
    16-byte alignment, so these run the scalar ones. Shapes with and without a multiple of the
    16-byte vector length."""
    for shape in [(33, 520), (8, 4096), (1037,)]:
        x = random_input(shape, dtype, rng)
        xo, xo_gpu = offset_view(x), offset_view(x.to(CUDA))
        assert xo_gpu.is_contiguous() and xo_gpu.data_ptr() % 16 != 0
        for g in (GRANULARITIES if len(shape) == 2 else ["tensor"]):
            check_cast(xo, torch.float8_e4m3fn, g, False, f"cast {g} {shape}", xo_gpu)
        assert_same_bits(fpx_encode(xo_gpu, 3, 2), fpx_encode(xo, 3, 2), f"fpx_encode {shape}")
        if len(shape) == 2:
            for bs in [(1, shape[1]), (1, 8), (shape[0], 1)]:
                check_affine(xo, bs, "uint4", "asymmetric", "int", what=f"affine {bs} {shape}", x_gpu=xo_gpu)
    codes = torch.randint(0, 64, (4099,), generator=rng, dtype=torch.uint8)
    co, co_gpu = offset_view(codes), offset_view(codes.to(CUDA))
    assert_same_bits(fpx_decode(co_gpu, 3, 2, dtype), fpx_decode(co, 3, 2, dtype), "fpx_decode")
    for bits in (1, 4, 6, 8):
        c = co & ((1 << bits) - 1)
        c_gpu = offset_view((codes & ((1 << bits) - 1)).to(CUDA))
        packed = pack_uintx(c_gpu, bits)
        assert_same_bits(packed, pack_uintx(c, bits), f"pack {bits}")
        assert_same_bits(unpack_uintx(offset_view(packed), bits, c.numel()), c, f"unpack {bits}")
    q = quantize_affine(torch.randn(16, 96, generator=rng), (1, 32), torch.rand(16, 3, generator=rng) + 0.1,
                        torch.randint(0, 16, (16, 3), generator=rng, dtype=torch.int32), "uint4")
    scale, zp = torch.rand(16, 3, generator=rng) + 0.1, torch.randint(0, 16, (16, 3), generator=rng, dtype=torch.int32)
    ref = dequantize_affine(offset_view(q), (1, 32), scale, zp, "uint4", output_dtype=dtype)
    got = dequantize_affine(offset_view(q.to(CUDA)), (1, 32), scale.to(CUDA), zp.to(CUDA), "uint4", output_dtype=dtype)
    assert_same_bits(got, ref, "dequantize codes")


# ---- errors and shapes -----------------------------------------------------------------

ERROR_CASES = [
    ("int input", lambda d: cast_to_float8(torch.ones(4, 4, dtype=torch.int32, device=d))),
    ("bad fp8 dtype", lambda d: cast_to_float8(torch.ones(4, 4, device=d), torch.float16)),
    ("bad granularity", lambda d: cast_to_float8(torch.ones(4, 4, device=d), torch.float8_e4m3fn, "block")),
    ("row of 1-D", lambda d: cast_to_float8(torch.ones(4, device=d), torch.float8_e4m3fn, "row")),
    ("fpx e4m3", lambda d: fpx_encode(torch.ones(4, device=d), 4, 3)),
    ("fpx too wide", lambda d: fpx_encode(torch.ones(4, device=d), 5, 3)),
    ("fpx int input", lambda d: fpx_encode(torch.ones(4, dtype=torch.int32, device=d), 3, 2)),
    ("fpx decode float codes", lambda d: fpx_decode(torch.ones(4, device=d), 3, 2)),
    ("fpx decode int out", lambda d: fpx_decode(torch.ones(4, dtype=torch.uint8, device=d), 3, 2, torch.int32)),
    ("qdtype", lambda d: choose_qparams_affine(torch.ones(4, 8, device=d), [1, 8], "int9")),
    ("mapping", lambda d: choose_qparams_affine(torch.ones(4, 8, device=d), [1, 8], "int4", "sym")),
    ("float domain symmetric",
     lambda d: choose_qparams_affine(torch.ones(4, 8, device=d), [1, 8], "int4", "symmetric", "float")),
    ("block rank", lambda d: choose_qparams_affine(torch.ones(4, 8, device=d), [8], "int4")),
    ("block divides", lambda d: choose_qparams_affine(torch.ones(4, 8, device=d), [1, 3], "int4")),
    ("qparams count",
     lambda d: quantize_affine(torch.ones(4, 8, device=d), [1, 8], torch.ones(3, 1, device=d),
                               torch.zeros(3, 1, device=d), "int4")),
    ("dequantize dtype",
     lambda d: dequantize_affine(torch.ones(4, 8, dtype=torch.uint8, device=d), [1, 8], torch.ones(4, 1, device=d),
                                 torch.zeros(4, 1, device=d), "int4")),
    ("pack bits", lambda d: pack_uintx(torch.ones(4, dtype=torch.uint8, device=d), 9)),
    ("pack dtype", lambda d: pack_uintx(torch.ones(4, dtype=torch.int32, device=d), 4)),
    ("unpack too many", lambda d: unpack_uintx(torch.ones(4, dtype=torch.uint8, device=d), 4, 9)),
    ("unpack negative", lambda d: unpack_uintx(torch.ones(4, dtype=torch.uint8, device=d), 4, -1)),
]


@pytest.mark.parametrize("name,call", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_match_cpu(name, call):
    with pytest.raises(RuntimeError) as cpu_err:
        call("cpu")
    with pytest.raises(RuntimeError) as cuda_err:
        call(CUDA)
    # The first line is the TORCH_CHECK message (C++ stack traces, if enabled, follow it).
    assert str(cuda_err.value).splitlines()[0] == str(cpu_err.value).splitlines()[0]


def test_ops_pass_opcheck_on_cuda():
    # The CUDA kernels' outputs (shape, dtype, strides) match the Meta kernels'.
    x = torch.randn(8, 64, device=CUDA, dtype=torch.bfloat16)
    ops = torch.ops.lowbit
    tests = ("test_schema", "test_faketensor")
    for g in GRANULARITIES:
        torch.library.opcheck(ops.cast_to_float8.default, (x, torch.float8_e5m2, g, True), test_utils=tests)
    torch.library.opcheck(ops.fpx_encode.default, (x, 3, 2), test_utils=tests)
    codes = ops.fpx_encode(x, 3, 2)
    torch.library.opcheck(ops.fpx_decode.default, (codes, 3, 2, torch.float16), test_utils=tests)
    qparams_args = (x, [1, 32], "uint4", "asymmetric", "int", None, None)
    scale, zp = ops.choose_qparams_affine(*qparams_args)
    torch.library.opcheck(ops.choose_qparams_affine.default, qparams_args, test_utils=tests)
    torch.library.opcheck(ops.quantize_affine.default, (x, [1, 32], scale, zp, "uint4", "int"), test_utils=tests)
    q = ops.quantize_affine(x, [1, 32], scale, zp, "uint4", "int")
    dq_args = (q, [1, 32], scale, zp, "uint4", "int", torch.bfloat16)
    torch.library.opcheck(ops.dequantize_affine.default, dq_args, test_utils=tests)
    torch.library.opcheck(ops.pack_uintx.default, (q, 4), test_utils=tests)
    torch.library.opcheck(ops.unpack_uintx.default, (ops.pack_uintx(q, 4), 4, q.numel()), test_utils=tests)
