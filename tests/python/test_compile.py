"""Every core lowbit op passes torch.library.opcheck and runs under torch.compile(fullgraph=True).

opcheck runs the op for real and under FakeTensorMode (the Meta kernel must give the same
shapes, dtypes and strides), checks the schema's mutation / aliasing claims, the autograd
registration, and AOT dispatch with static and dynamic shapes.
"""

import pytest
import torch

import lowbit  # noqa: F401  (registers torch.ops.lowbit)
from lowbit import core

ops = torch.ops.lowbit
# opcheck's internals still call torch.jit; the warning is torch's, not lowbit's.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
ALL_TEST_UTILS = (
    "test_schema",
    "test_autograd_registration",
    "test_faketensor",
    "test_aot_dispatch_static",
    "test_aot_dispatch_dynamic",
)


def _cases():
    g = torch.Generator().manual_seed(0)
    x2 = torch.randn(8, 64, generator=g)
    x3 = torch.randn(2, 6, 32, generator=g)
    cases = []
    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        for granularity in ("tensor", "row", "column"):
            for pow2 in (False, True):
                cases.append(("cast_to_float8", (x3, dtype, granularity, pow2)))
    cases.append(("cast_to_float8", (x2.bfloat16(), torch.float8_e4m3fn, "row", False)))
    cases.append(("cast_to_float8", (torch.randn(40, generator=g).half(), torch.float8_e5m2, "tensor", False)))
    cases.append(("float8_amax", ([x3, x2.bfloat16(), torch.empty(0)],)))
    cases.append(("float8_amax_to_scale", (torch.tensor([0.0, 3.0, 1e30]), torch.float8_e4m3fn, False)))
    cases.append(("float8_amax_to_scale", (torch.tensor([[0.5, 7.0]]), torch.float8_e5m2, True)))
    cases.append(("cast_to_float8_with_scale", (x3, torch.tensor(0.01), torch.float8_e4m3fn)))
    cases.append(("cast_to_float8_with_scale", (x2.half(), torch.tensor([2.0]), torch.float8_e5m2)))
    cases.append(("fpx_encode", (x2, 3, 2)))
    cases.append(("fpx_encode", (x3.bfloat16(), 2, 1)))
    codes6 = torch.randint(0, 64, (8, 16), generator=g, dtype=torch.int32).to(torch.uint8)
    cases.append(("fpx_decode", (codes6, 3, 2, torch.float32)))
    cases.append(("fpx_decode", (codes6, 2, 3, torch.bfloat16)))
    for qdtype, mapping, domain, block in [
        ("int4", "symmetric", "int", [1, 32]),
        ("uint4", "asymmetric", "float", [1, 32]),
        ("int8", "asymmetric", "int", [1, 64]),
        ("uint2", "asymmetric", "int", [8, 64]),
    ]:
        cases.append(("choose_qparams_affine", (x2, block, qdtype, mapping, domain, None, None)))
        s, zp = core.choose_qparams_affine(x2, block, qdtype, mapping, domain)
        cases.append(("quantize_affine", (x2, block, s, zp, qdtype, domain)))
        q = core.quantize_affine(x2, block, s, zp, qdtype, domain)
        cases.append(("dequantize_affine", (q, block, s, zp, qdtype, domain, torch.float32)))
    cases.append(("choose_qparams_affine", (x3, [1, 3, 16], "uint8", "asymmetric", "int", 1e-5, torch.bfloat16)))
    s, zp = core.choose_qparams_affine(x3, [1, 1, 32], "int8")
    q = core.quantize_affine(x3, [1, 1, 32], s, zp, "int8")
    cases.append(("dequantize_affine", (q, [1, 1, 32], s, zp, "int8", "int", torch.bfloat16)))
    for bits in (1, 3, 4, 6, 8):
        codes = torch.randint(0, 2**bits, (5, 13), generator=g, dtype=torch.int32).to(torch.uint8)
        cases.append(("pack_uintx", (codes, bits)))
        cases.append(("unpack_uintx", (core.pack_uintx(codes, bits), bits, codes.numel())))
    return cases


CASES = _cases()
CORE_OPS = {
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
}


# Ops whose opcheck lives with their feature's tests (fp8 inputs need their own test_utils).
CHECKED_ELSEWHERE = {
    "scaled_mm": "tests/python/test_float8_training.py::test_opcheck_float8_ops",
    "prune_2_4": "tests/python/test_sparse_prune.py::test_opcheck",
    "compress_2_4": "tests/python/test_sparse_prune.py::test_compress_opcheck",
    "decompress_2_4": "tests/python/test_sparse_prune.py::test_compress_opcheck",
}


def test_every_core_op_has_opcheck_cases():
    assert {name for name, _ in CASES} == CORE_OPS
    assert set(core.__all__) == CORE_OPS | set(CHECKED_ELSEWHERE)


@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_opcheck(name, args):
    torch.library.opcheck(getattr(ops, name).default, args, test_utils=ALL_TEST_UTILS)


def quantize_round_trip(x: torch.Tensor) -> torch.Tensor:
    """float8 cast + affine uint4 quantize, bit pack / unpack, dequantize + fpx round trip."""
    data, scale = core.cast_to_float8(x, torch.float8_e4m3fn, "row")
    y = data.float() * scale
    s, zp = core.choose_qparams_affine(y, [1, 32], "uint4", "asymmetric", "float")
    q = core.quantize_affine(y, [1, 32], s, zp, "uint4", "float")
    packed = core.pack_uintx(q, 4)
    q2 = core.unpack_uintx(packed, 4, q.numel()).view(q.shape)
    z = core.dequantize_affine(q2, [1, 32], s, zp, "uint4", "float")
    codes = core.fpx_encode(z, 3, 2)
    return core.fpx_decode(codes, 3, 2) + 0.5 * z


def test_compiled_chain_matches_eager():
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    torch._dynamo.reset()
    compiled = torch.compile(quantize_round_trip, fullgraph=True)
    assert torch.equal(compiled(x), quantize_round_trip(x))


def test_compiled_chain_with_dynamic_shapes():
    g = torch.Generator().manual_seed(2)
    torch._dynamo.reset()
    compiled = torch.compile(quantize_round_trip, fullgraph=True, dynamic=True, backend="aot_eager")
    for rows in (4, 9, 12):
        x = torch.randn(rows, 96, generator=g)
        assert torch.equal(compiled(x), quantize_round_trip(x))


def test_compiled_cast_variants_match_eager():
    def cast(x):
        outs = []
        for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            for granularity in ("tensor", "row", "column"):
                data, scale = core.cast_to_float8(x, dtype, granularity, power_of_2_scale=granularity == "row")
                outs.append(data.float() * scale)
        return outs

    x = torch.randn(3, 8, 16, generator=torch.Generator().manual_seed(3))
    torch._dynamo.reset()
    compiled = torch.compile(cast, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(x), cast(x)):
        assert torch.equal(got, want)


# Bad calls on "meta" tensors reach the Meta (fake) kernels, which must reject what the CPU
# kernels reject, with the same message, so torch.compile fails at trace time, not later.
META_ERRORS = [
    (lambda m: core.cast_to_float8(torch.zeros(4, 8, device=m, dtype=torch.int32)), "input dtype"),
    (lambda m: core.cast_to_float8(torch.zeros(4, 8, device=m), torch.float16), "allowed: torch.float8_e4m3fn"),
    (lambda m: core.cast_to_float8(torch.zeros(8, device=m), granularity="row"), "at least 2 dims"),
    (lambda m: core.fpx_encode(torch.zeros(4, device=m), 4, 3), "torch-native float8"),
    (lambda m: core.fpx_decode(torch.zeros(4, device=m), 3, 2), "allowed: torch.uint8"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [1, 8], "int9"), "unknown qdtype"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [8], "int4"), "one entry per input dim"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [1, 3], "int4"), "does not divide input shape"),
    (lambda m: core.quantize_affine(torch.zeros(4, 8, device=m), [1, 3], torch.ones(4, 2, device=m),
                                    torch.zeros(4, 2, device=m, dtype=torch.int32), "int4"), "does not divide"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [1, 8], "int4", "symmetric", "float"),
     "goes with mapping 'asymmetric' only"),
    (lambda m: core.quantize_affine(torch.zeros(4, 8, device=m), [1, 4], torch.ones(4, 1, device=m),
                                    torch.zeros(4, 1, device=m, dtype=torch.int32), "int4"), "one value per block"),
    (lambda m: core.dequantize_affine(torch.zeros(4, 8, device=m, dtype=torch.int8), [1, 8], torch.ones(4, 1, device=m),
                                      torch.zeros(4, 1, device=m, dtype=torch.int32), "uint4"),
     "data for qdtype 'uint4' must be"),
    # Arguments that were accepted and gave wrong answers (issue 14 item 7).
    (lambda m: core.dequantize_affine(torch.zeros(4, 8, device=m, dtype=torch.int8), [1, 8], torch.ones(4, 1, device=m),
                                      torch.zeros(4, 1, device=m, dtype=torch.int32), "int8", output_dtype=torch.int32),
     r"output_dtype torch.int32 is not supported; allowed: torch.float32"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [1, 8], "int8", scale_dtype=torch.int32),
     r"scale_dtype torch.int32 is not supported; allowed: torch.float32"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [1, 8], "int8", eps=-1.0),
     "eps must be a positive, finite float32"),
    (lambda m: core.choose_qparams_affine(torch.zeros(4, 8, device=m), [1, 8], "int8", eps=0.0), "eps must be"),
    (lambda m: core.quantize_affine(torch.zeros(4, 8, device=m), [1, 8], torch.ones(4, 1, device=m),
                                    torch.zeros(4, 1, device=m), "int8"),
     "zero_point for zero_point_domain 'int' must be an integer tensor"),
    (lambda m: core.quantize_affine(torch.zeros(4, 8, device=m), [1, 8], torch.ones(4, 1, device=m),
                                    torch.zeros(4, 1, device=m, dtype=torch.int32), "uint4", "float"),
     "zero_point dtype for zero_point_domain 'float': torch.int32 is not supported"),
    (lambda m: core.quantize_affine(torch.zeros(4, 8, device=m), [2, 4], torch.ones(4, 1, device=m),
                                    torch.zeros(4, 1, device=m, dtype=torch.int32), "int8"),
     r"does not lay out the blocks .* expected shape \[2, 2\]"),
    (lambda m: torch.ops.lowbit.fake_quantize_affine(torch.zeros(4, 8, device=m, dtype=torch.int32), [1, 8], "int8"),
     "fake_quantize_affine: input dtype torch.int32 is not supported"),
    (lambda m: torch.ops.lowbit.fake_quantize_affine(torch.zeros(4, 8, device=m), [1, 3], "int8"),
     "does not divide input shape"),
    (lambda m: core.scaled_mm(torch.zeros(4, 8, device=m, dtype=torch.float8_e4m3fn),
                              torch.zeros(8, 4, device=m, dtype=torch.float8_e4m3fn), torch.ones((), device=m),
                              torch.ones((), device=m), torch.ones(4, device=m, dtype=torch.int32), emulate=True),
     "bias must be float32, bfloat16 or float16"),
    (lambda m: core.pack_uintx(torch.zeros(4, device=m, dtype=torch.uint8), 9), "allowed: 1..8"),
    (lambda m: core.unpack_uintx(torch.zeros(3, device=m, dtype=torch.uint8), 4, 7), "hold at most 6 codes"),
]


@pytest.mark.parametrize("call,phrase", META_ERRORS, ids=[str(i) for i in range(len(META_ERRORS))])
def test_meta_kernels_reject_what_cpu_rejects(call, phrase):
    for device in ("cpu", "meta"):
        with pytest.raises(RuntimeError, match=phrase):
            call(device)
