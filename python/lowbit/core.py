"""The core numerics of lowbit: thin, documented wrappers over ``torch.ops.lowbit.*``.

Each function in ``__all__`` is one dispatcher op with a CPU reference kernel, a CUDA kernel and a
Meta kernel (so it works under ``torch.compile``). C++ has the same names in ``lowbit::core``.
Besides them, diagnostics that say which kernel path the ops took (``scaled_mm_last_path``,
``last_kernel_path``, ``kernel_path_counts``, ``reset_kernel_path_counts``): not ops, not compute.
"""

from typing import Dict, Optional, Sequence, Tuple

import torch

from . import _C

_ops = torch.ops.lowbit


def cast_to_float8(
    x: torch.Tensor,
    dtype: torch.dtype = torch.float8_e4m3fn,
    granularity: str = "tensor",
    *,
    power_of_2_scale: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Dynamically scaled cast to float8; returns ``(data, scale)`` with ``data.float() * scale ≈ x``.

    ``dtype``: ``torch.float8_e4m3fn`` or ``torch.float8_e5m2``. ``granularity``: ``"tensor"``
    (scale shape ``()``), ``"row"`` (``(..., rows, 1)``) or ``"column"`` (``(..., 1, cols)``).
    ``scale = max(amax, 1e-12) / max_finite(dtype)``, rounded up to a power of 2 if asked, with
    amax over the finite values. Saturating: ±inf becomes ±max_finite, NaN stays NaN (README
    "Non-finite values"). The amax and scale stay on the device (no host synchronization).
    """
    return _ops.cast_to_float8(x, dtype, granularity, power_of_2_scale)


def float8_amax(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Absolute maximum of each tensor's finite values as a float32 tensor of shape ``(len(xs),)``
    (±inf and NaN skipped, 0 for an empty tensor): the amax ``cast_to_float8(x, granularity="tensor")`` scales with.
    With :func:`float8_amax_to_scale` and :func:`cast_to_float8_with_scale` it splits that cast
    into steps, so a collective (all-reduce MAX of shards' amaxes) can sit between them."""
    return _ops.float8_amax(list(xs))


def float8_amax_to_scale(amax: torch.Tensor, dtype: torch.dtype = torch.float8_e4m3fn, *,
                         power_of_2_scale: bool = False) -> torch.Tensor:
    """Elementwise float8 dequantization scales ``max(amax, 1e-12) / max_finite(dtype)`` for float32
    ``amax`` (rounded up to a power of 2 if asked): cast_to_float8's scale rule."""
    return _ops.float8_amax_to_scale(amax, dtype, power_of_2_scale)


def cast_to_float8_with_scale(x: torch.Tensor, scale: torch.Tensor,
                              dtype: torch.dtype = torch.float8_e4m3fn) -> torch.Tensor:
    """Casts ``x`` to ``dtype`` with a given one-element float32 ``scale`` (saturating, NaN kept):
    cast_to_float8's cast once the scale is known."""
    return _ops.cast_to_float8_with_scale(x, scale, dtype)


def fpx_encode(x: torch.Tensor, ebits: int, mbits: int) -> torch.Tensor:
    """Encodes ``x`` as fpX_e{ebits}m{mbits} codes, one per ``uint8`` (round-to-nearest-even,
    saturating: ±inf gives ± the largest code; with subnormals; no inf/NaN codes, so NaN gives
    code 0). ``1 + ebits + mbits <= 8``; e4m3 and e5m2 are torch's own float8 dtypes and are
    rejected here."""
    return _ops.fpx_encode(x, ebits, mbits)


def fpx_decode(codes: torch.Tensor, ebits: int, mbits: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Decodes ``uint8`` fpX codes to ``dtype`` (float32, bfloat16 or float16)."""
    return _ops.fpx_decode(codes, ebits, mbits, dtype)


def choose_qparams_affine(
    x: torch.Tensor,
    block_size: Sequence[int],
    qdtype: str,
    mapping: str = "symmetric",
    zero_point_domain: str = "int",
    eps: Optional[float] = None,
    scale_dtype: Optional[torch.dtype] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point for every block of ``x``.

    ``block_size`` has one entry per dim of ``x`` (``x.shape`` for per-tensor, ``(1, K)`` per row,
    ``(1, G)`` per group of G); ``qdtype`` is ``"int1"``..``"int8"`` or ``"uint1"``..``"uint8"``;
    ``mapping`` ``"symmetric"`` or ``"asymmetric"``; ``zero_point_domain`` ``"int"`` or
    ``"float"`` (asymmetric only). Both outputs have shape ``x.shape / block_size``. ``eps``
    (default float32's epsilon) is the smallest scale; ``scale_dtype`` a floating dtype.
    Min / max are over the finite values; a block holding a NaN gets a NaN scale (README
    "Non-finite values").
    """
    return _ops.choose_qparams_affine(x, list(block_size), qdtype, mapping, zero_point_domain, eps, scale_dtype)


def quantize_affine(
    x: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    qdtype: str,
    zero_point_domain: str = "int",
) -> torch.Tensor:
    """Quantizes ``x`` to ``qdtype`` codes (``int8`` storage for intN, ``uint8`` for uintN)."""
    return _ops.quantize_affine(x, list(block_size), scale, zero_point, qdtype, zero_point_domain)


def dequantize_affine(
    data: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    qdtype: str,
    zero_point_domain: str = "int",
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Maps ``qdtype`` codes back to real values of ``output_dtype``."""
    return _ops.dequantize_affine(data, list(block_size), scale, zero_point, qdtype, zero_point_domain, output_dtype)


def pack_uintx(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Packs ``uint8`` codes (each ``< 2**bits``, bits 1..8) in flat order into
    ``ceil(numel * bits / 8)`` bytes, least significant bits first (int4: two per byte;
    fp6: four per three bytes)."""
    return _ops.pack_uintx(codes, bits)


def unpack_uintx(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_uintx`: the first ``numel`` codes, as a 1-D ``uint8`` tensor."""
    return _ops.unpack_uintx(packed, bits, numel)


def scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    out_dtype: Optional[torch.dtype] = None,
    *,
    use_fast_accum: bool = False,
    emulate: bool = False,
) -> torch.Tensor:
    """fp8 x fp8 GEMM: ``(a @ b) * scale_a * scale_b (+ bias)`` accumulated in float32, returned as
    ``out_dtype`` (bfloat16 by default). ``a`` (M, K), ``b`` (K, N) in float8_e4m3fn / e5m2;
    scales one value each (tensorwise) or ``(M, 1)`` / ``(1, N)`` (row-wise). cuBLASLt on GPUs with
    fp8 tensor cores; ``emulate=True`` dequantizes and multiplies in float32 on any device.
    ``bias``: float32 / bfloat16 / float16 on ``a``'s device (on CUDA, 16-bit outputs add it in
    the output dtype, float32 outputs in float32). M, N or K = 0 give zeros (plus bias) without a
    GEMM. :func:`scaled_mm_last_path` says which path a call took."""
    return _ops.scaled_mm(a, b, scale_a, scale_b, bias, out_dtype, use_fast_accum, emulate)


def prune_2_4(x: torch.Tensor, algorithm: str = "largest_abs") -> Tuple[torch.Tensor, torch.Tensor]:
    """Prunes a 2-D ``x`` to 2:4; returns ``(values, mask)``: ``values`` is ``x`` where the bool
    ``mask`` is set and +0 elsewhere.

    ``algorithm``: ``"largest_abs"`` (default) and ``"largest"`` (signed) keep at most 2 per row
    AND per column of every aligned 4x4 tile (the transpose is 2:4 too; rows and columns multiples
    of 4), greedily from the largest; ``"largest_abs_rows"`` keeps the 2 largest magnitudes of each
    group of 4 along a row (columns a multiple of 4). NaN ranks above every number; ties go to the
    element earlier in row-major order, identically on CPU and CUDA.
    """
    return _ops.prune_2_4(x, algorithm)


def compress_2_4(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The portable 2:4 compressed form of a 2-D ``x`` with at most 2 nonzeros per aligned group of
    4 along its rows (``prune_2_4``'s values): ``(values, meta)``, ``values`` ``(rows, cols / 2)`` the
    2 stored values of each group in position order, ``meta`` ``(rows, cols / 8)`` uint8 with one
    4-bit code per group (``pos0 | pos1 << 2``, pos0 < pos1; even group in the low nibble). Groups
    with fewer than 2 nonzeros also store their lowest zero positions, so the round trip is exact.
    ``cols`` a multiple of 8; float32, float64, bfloat16, float16 or int8."""
    return _ops.compress_2_4(x)


def decompress_2_4(values: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`compress_2_4`: the dense ``(rows, cols)`` tensor, +0 where nothing is stored."""
    return _ops.decompress_2_4(values, meta)


def scaled_mm_last_path() -> str:
    """Which path the most recent :func:`scaled_mm` call took (any thread): ``"cublaslt_outer_vector"``
    (row-wise scales in cuBLASLt's epilogue), ``"cublaslt_tensorwise"``, ``"unit_scale_fallback"``
    (cuBLASLt without row-wise scaling, scales applied after; warns once), ``"emulated"``,
    ``"empty"`` (M, N or K is 0), or ``"none"`` before the first call. A diagnostic for tests and
    benchmarks; CUDA graph replays record nothing."""
    return _C.scaled_mm_last_path()


def last_kernel_path(op: str) -> str:
    """The path of the most recent call of an op family: ``"scaled_mm"``, ``"weight_only_linear"``
    (``"gemv"``, ``"wmma"``, ``"dequantize_cublas"``, ``"empty"``), ``"semi_sparse_mm"`` (``"reference"``,
    ``"cusparselt"``, ``"cusparselt_padded"``, ``"empty"``) or ``"int8_dynamic_linear"``
    (``"dp4a"``, ``"int_mm"``, ``"empty"``); ``"none"`` before the first. The quantized linears
    record their CUDA kernels' choice only."""
    return _C.last_kernel_path(op)


def kernel_path_counts() -> Dict[str, int]:
    """Calls per ``"op/path"`` (every path listed) since the process started or
    :func:`reset_kernel_path_counts`. Take two snapshots and subtract to see what a region ran."""
    return dict(_C.kernel_path_counts())


def reset_kernel_path_counts() -> None:
    """Zeroes :func:`kernel_path_counts` and forgets the last paths."""
    _C.reset_kernel_path_counts()


__all__ = [  # the ops (the diagnostics above are not ops, and not listed)
    "compress_2_4",
    "decompress_2_4",
    "prune_2_4",
    "scaled_mm",
    "cast_to_float8",
    "float8_amax",
    "float8_amax_to_scale",
    "cast_to_float8_with_scale",
    "fpx_encode",
    "fpx_decode",
    "choose_qparams_affine",
    "quantize_affine",
    "dequantize_affine",
    "pack_uintx",
    "unpack_uintx",
]
