"""quantize_: every config and shorthand on a bf16 two-layer MLP (output SQNR floors (dB, output of the bf16 MLP vs its unquantized output, Gaussian weights): uniform
quantization is worth ~6 dB per bit of precision, and the two-layer output tracks the weight
SQNR. Measured on this MLP: int8wo 38, int8dq 35, float8 e4m3 25-28, e5m2 23, int4wo 17-19,
int4dq 17, fpX ~6 dB per mantissa bit + 2..4 (e1 formats, which lack range, ~2 dB lower; m = 0
formats 9-11, fp2_e1m0 -1), uintB group-wise 6 dB per bit - 6. The floors sit 2-5 dB below:
  int8 32; int4 14; int8 x int4 14; float8 e4m3 22, e5m2 19;
  fpX_eAmB 6 * m (6 * m - 1 for A = 1; 6 for m = 0 and -3 for fp2_e1m0, which only checks the
  output stays finite and at noise level); uintB 6 * B - 10. Groups wider than the default (256)
  lose 2-3 dB more: int4 group 256 12, uintB group > 64 6 * B - 13.
"""

import math

import pytest
import torch

import lowbit
from lowbit.inference import (
    Float8DynamicActivationFloat8WeightConfig,
    Float8WeightOnlyConfig,
    FPXWeightOnlyConfig,
    Int4WeightOnlyConfig,
    Int8DynamicActivationInt4WeightConfig,
    Int8DynamicActivationInt8WeightConfig,
    Int8WeightOnlyConfig,
    QuantizedTensor,
    SemiSparseWeightConfig,
    UIntXWeightOnlyConfig,
    parse_quantize_config,
    quantize_shorthands,
)

K, H = 256, 512

ISSUE_SHORTHANDS = (
    ["int4wo", "int4wo-32", "int4wo-64", "int4wo-128", "int4wo-256", "int8wo", "int8dq", "int4dq",
     "int4_weight_only", "int8_weight_only", "int8_dynamic_activation_int8_weight",
     "int8_dynamic_activation_int4_weight", "float8wo", "float8wo_e5m2", "float8wo_e4m3", "float8dq",
     "float8dq_e4m3", "float8dq_e4m3_tensor", "float8dq_e4m3_row", "float8_e4m3_tensor", "float8_e4m3_row",
     "float8_weight_only", "float8_dynamic_activation_float8_weight", "int_a16w4", "int_a8w4", "int_a16w8",
     "int_a8w8", "float8_e5m2_a16w8", "float8_e4m3_a16w8", "float_a8w8", "float_a16w8"]
    + [f"fp{1 + a + b}_e{a}m{b}" for a in range(1, 7) for b in range(0, 7) if 1 + a + b <= 7]
    + [f"uint{b}wo" for b in range(1, 8)] + [f"float_a16w{b}" for b in range(3, 8)]
    + [f"uint_a16w{b}" for b in range(1, 8)])

CONFIGS = [
    Int4WeightOnlyConfig(group_size=128), Int4WeightOnlyConfig(group_size=32), Int8WeightOnlyConfig(),
    Int8DynamicActivationInt8WeightConfig(), Int8DynamicActivationInt4WeightConfig(group_size=32),
    Float8WeightOnlyConfig(torch.float8_e4m3fn), Float8WeightOnlyConfig(torch.float8_e5m2),
    Float8DynamicActivationFloat8WeightConfig("tensor"), Float8DynamicActivationFloat8WeightConfig("row"),
    FPXWeightOnlyConfig(3, 2), FPXWeightOnlyConfig(2, 2), FPXWeightOnlyConfig(2, 1), FPXWeightOnlyConfig(1, 1),
    UIntXWeightOnlyConfig(4), UIntXWeightOnlyConfig(2, group_size=32), UIntXWeightOnlyConfig(7),
    SemiSparseWeightConfig(),
]


def sqnr_floor(c) -> float:
    kind = c.kind
    if kind in ("Int8WeightOnlyConfig", "Int8DynamicActivationInt8WeightConfig"):
        return 32.0
    if kind in ("Int4WeightOnlyConfig", "Int8DynamicActivationInt4WeightConfig"):
        return 14.0 - (2.0 if c.group_size > 128 else 0.0)
    if kind == "Float8WeightOnlyConfig":
        return 19.0 if c.dtype == torch.float8_e5m2 else 22.0
    if kind == "Float8DynamicActivationFloat8WeightConfig":
        return 22.0
    if kind == "FPXWeightOnlyConfig":
        if c.mbits == 0:
            return -3.0 if c.ebits == 1 else 6.0
        return 6.0 * c.mbits - (1.0 if c.ebits == 1 else 0.0)
    if kind == "UIntXWeightOnlyConfig":  # groups wider than 64 share one range over more weights
        return 6.0 * c.bits - 10.0 - (3.0 if c.group_size > 64 else 0.0)
    if kind == "SemiSparseWeightConfig":  # half of every group of 4 pruned: ~6 dB at the MLP's output
        return 4.0
    raise AssertionError(kind)


def expected_bytes(c, n: int, k: int) -> int:
    """Bytes of the parts of one (n, k) weight, as the format says."""
    kind = c.kind
    if kind in ("Int8WeightOnlyConfig", "Int8DynamicActivationInt8WeightConfig"):
        return n * k + 4 * n
    if kind == "Int4WeightOnlyConfig":  # tinygemm: 4-bit codes + bf16 (scale, zero) per group
        return n * k // 2 + (k // c.group_size) * n * 2 * 2
    if kind == "Int8DynamicActivationInt4WeightConfig":  # 4-bit codes + f32 scale + i32 zero point per group
        return n * k // 2 + 8 * n * (k // c.group_size)
    if kind == "Float8WeightOnlyConfig":
        return n * k + 4 * n
    if kind == "Float8DynamicActivationFloat8WeightConfig":
        return n * k + (4 * n if c.granularity == "row" else 4)
    if kind == "FPXWeightOnlyConfig":
        return n * k * (1 + c.ebits + c.mbits) // 8 + 4 * n
    if kind == "UIntXWeightOnlyConfig":
        return n * k * c.bits // 8 + 8 * n * (k // c.group_size)
    if kind == "SemiSparseWeightConfig":  # bf16 kept values (half) + a 4-bit position code per group of 4
        return n * k // 2 * 2 + n * k // 8
    raise AssertionError(kind)


def sqnr(ref: torch.Tensor, x: torch.Tensor) -> float:
    ref, x = ref.float(), x.float()
    return 10 * math.log10(ref.pow(2).mean().item() / (ref - x).pow(2).mean().clamp_min(1e-30).item())


def make_mlp(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(K, H), torch.nn.GELU(), torch.nn.Linear(H, K))
    with torch.no_grad():
        for lin in (mlp[0], mlp[2]):  # Gaussian weights, the usual shape of trained weights
            lin.weight.normal_(0, lin.in_features ** -0.5)
    return mlp.to(torch.bfloat16)


@pytest.fixture(scope="module")
def mlp_and_input():
    mlp = make_mlp()
    x = torch.randn(8, K, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    with torch.no_grad():
        ref = mlp(x)
    return mlp, x, ref


def quantized_copy(mlp, config, **kwargs):
    q = make_mlp()
    q.load_state_dict(mlp.state_dict())
    return lowbit.quantize_(q, config, **kwargs)


# ---- configs and shorthands ---------------------------------------------------------------


def test_every_issue_shorthand_is_valid():
    valid = set(quantize_shorthands())
    missing = [n for n in ISSUE_SHORTHANDS if n not in valid]
    assert not missing, missing
    for name in valid:
        c = parse_quantize_config(name)
        assert parse_quantize_config(c.name) == c  # the canonical name maps back to the same config


def test_shorthands_name_the_right_configs():
    assert parse_quantize_config("int4wo") == Int4WeightOnlyConfig(128)
    assert parse_quantize_config("int4wo-32") == Int4WeightOnlyConfig(32)
    assert parse_quantize_config("int_a8w4") == Int8DynamicActivationInt4WeightConfig(32)
    assert parse_quantize_config("float8wo_e5m2") == Float8WeightOnlyConfig(torch.float8_e5m2)
    assert parse_quantize_config("float8_e4m3_row") == Float8DynamicActivationFloat8WeightConfig("row")
    assert parse_quantize_config("float8dq") == Float8DynamicActivationFloat8WeightConfig("tensor")
    assert parse_quantize_config("fp6_e3m2") == FPXWeightOnlyConfig(3, 2)
    assert parse_quantize_config("float_a16w4") == FPXWeightOnlyConfig(2, 1)
    assert parse_quantize_config("uint_a16w3") == UIntXWeightOnlyConfig(3, 64)
    assert repr(Int4WeightOnlyConfig(64)) == "Int4WeightOnlyConfig(group_size=64)"


def test_unknown_shorthand_is_value_error_listing_valid_names(mlp_and_input):
    mlp, _, _ = mlp_and_input
    with pytest.raises(ValueError, match=r"unknown config shorthand 'int3wo'.*int4wo.*fp6_e3m2.*uint7wo"):
        lowbit.quantize_(make_mlp(), "int3wo")


@pytest.mark.parametrize("make", [
    lambda: Int4WeightOnlyConfig(group_size=100),
    lambda: Int8DynamicActivationInt4WeightConfig(group_size=0),
    lambda: Float8WeightOnlyConfig(torch.bfloat16),
    lambda: Float8DynamicActivationFloat8WeightConfig("column"),
    lambda: FPXWeightOnlyConfig(4, 3),
    lambda: FPXWeightOnlyConfig(0, 3),
    lambda: UIntXWeightOnlyConfig(8),
])
def test_bad_configs_are_value_errors(make):
    with pytest.raises(ValueError):
        make()


def test_config_type_error():
    with pytest.raises(TypeError, match="QuantizeConfig or a shorthand"):
        lowbit.quantize_(make_mlp(), 4)


# ---- every config on the MLP ----------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_config_sqnr_bytes_and_state_dict(mlp_and_input, config):
    mlp, x, ref = mlp_and_input
    q = quantized_copy(mlp, config)
    for lin in (q[0], q[2]):
        assert isinstance(lin.weight, QuantizedTensor) and lin.weight.config_name == config.name
        assert lin.weight.shape == (lin.out_features, lin.in_features) and lin.weight.dtype == torch.bfloat16
        assert lin.weight.nbytes_quantized() == expected_bytes(config, lin.out_features, lin.in_features)
    with torch.no_grad():
        y = q(x)
    assert y.dtype == torch.bfloat16 and y.shape == ref.shape
    assert sqnr(ref, y) >= sqnr_floor(config), (config, sqnr(ref, y))

    # state_dict() of the quantized model loads into a fresh float model with assign=True.
    fresh = make_mlp(seed=5)
    fresh.load_state_dict(q.state_dict(), assign=True)
    assert isinstance(fresh[0].weight, QuantizedTensor)
    with torch.no_grad():
        assert torch.equal(fresh(x), y)


_OUTPUT_BY_FORMAT = {}  # shorthands naming the same config share one quantized run


@pytest.mark.parametrize("name", sorted(set(ISSUE_SHORTHANDS) | set(quantize_shorthands())))
def test_every_shorthand_on_the_mlp(mlp_and_input, name):
    mlp, x, ref = mlp_and_input
    config = parse_quantize_config(name)
    if config.name not in _OUTPUT_BY_FORMAT:
        q = quantized_copy(mlp, name)
        assert q[0].weight.config_name == config.name and q[2].weight.config_name == config.name
        with torch.no_grad():
            _OUTPUT_BY_FORMAT[config.name] = q(x)
    y = _OUTPUT_BY_FORMAT[config.name]
    assert torch.isfinite(y).all()
    assert sqnr(ref, y) >= sqnr_floor(config), (name, sqnr(ref, y))


def test_int4_group128_is_well_under_a_third_of_bf16(mlp_and_input):
    mlp, _, _ = mlp_and_input
    q = quantized_copy(mlp, "int4wo")
    qbytes = sum(m.weight.nbytes_quantized() for m in (q[0], q[2]))
    bf16_bytes = sum(m.weight.numel() * 2 for m in (mlp[0], mlp[2]))
    assert qbytes / bf16_bytes < 0.28


def test_dequantize_matches_the_forward(mlp_and_input):
    mlp, x, _ = mlp_and_input
    q = quantized_copy(mlp, "uint4wo")
    w = q[0].weight.dequantize()
    with torch.no_grad():
        expect = torch.nn.functional.linear(x, w) + q[0].bias  # the op adds the bias after the GEMM
        assert torch.equal(q[0](x), expect)


# ---- layer selection ------------------------------------------------------------------------


def test_filter_fn_and_modules_to_not_convert(mlp_and_input):
    mlp, _, _ = mlp_and_input
    q = quantized_copy(mlp, "int8wo", filter_fn=lambda mod, fqn: fqn == "2")
    assert not isinstance(q[0].weight, QuantizedTensor) and isinstance(q[2].weight, QuantizedTensor)
    q = quantized_copy(mlp, "int8wo", modules_to_not_convert=["0"])
    assert not isinstance(q[0].weight, QuantizedTensor) and isinstance(q[2].weight, QuantizedTensor)
    # A prefix matches whole name components only ("1" does not exclude "10").
    deep = torch.nn.ModuleDict({"1": torch.nn.Linear(64, 64), "10": torch.nn.Linear(64, 64)})
    lowbit.quantize_(deep, "int8wo", modules_to_not_convert=["1"])
    assert not isinstance(deep["1"].weight, QuantizedTensor) and isinstance(deep["10"].weight, QuantizedTensor)


def test_unsupported_shapes_are_skipped_and_requantizing_is_a_no_op():
    model = torch.nn.Sequential(torch.nn.Linear(96, 64), torch.nn.Linear(64, 60))
    lowbit.quantize_(model, "int4wo")  # K = 96 is no multiple of 128; N = 60 no multiple of 16
    assert not isinstance(model[0].weight, QuantizedTensor) and not isinstance(model[1].weight, QuantizedTensor)
    lowbit.quantize_(model, "int8wo")
    w = model[0].weight
    lowbit.quantize_(model, "int4dq")
    assert model[0].weight is w  # already quantized: left alone


def test_failed_quantize_leaves_the_model_untouched():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 64))
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError):
        lowbit.quantize_(model, "nope")
    with pytest.raises(RuntimeError):
        lowbit.quantize_(model, "int4wo-32", device="meta")  # tinygemm packing cannot run on meta
    assert all(type(p) is torch.nn.Parameter and torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_quantized_weight_rejects_dense_ops(mlp_and_input):
    mlp, _, _ = mlp_and_input
    q = quantized_copy(mlp, "int8wo")
    with pytest.raises(NotImplementedError, match="dequantize"):
        q[0].weight + 1
    with pytest.raises(NotImplementedError, match="dequantize"):
        q[0].weight.to(torch.float64)
    # float dtypes are the logical dtype (dequantize's output): the parts stay, the output follows.
    assert q[0].weight.to(torch.float32).dtype == torch.float32


# ---- torch.compile ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["int8wo", "int8dq", "int4wo", "int4dq", "float8dq_e4m3_row", "fp6_e3m2", "uint3wo"])
def test_torch_compile_fullgraph(mlp_and_input, name):
    mlp, x, _ = mlp_and_input
    q = quantized_copy(mlp, name)
    with torch.no_grad():
        eager = q(x)
        torch._dynamo.reset()
        compiled = torch.compile(q, backend="aot_eager", fullgraph=True)(x)
    assert torch.equal(compiled, eager)


@pytest.mark.parametrize("name", ["int8wo", "int4wo", "float8dq_e4m3_row", "fp6_e3m2"])
def test_torch_compile_inductor(mlp_and_input, name):
    """The default backend: inductor generates code around the lowbit ops (opaque custom ops, their
    outputs are the eager ones), so only its own fusion of the bf16 GELU and bias may differ, by
    bf16 rounding of intermediate values."""
    mlp, x, _ = mlp_and_input
    q = quantized_copy(mlp, name)
    with torch.no_grad():
        eager = q(x)
        torch._dynamo.reset()
        compiled = torch.compile(q, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager, rtol=2e-2, atol=2e-2)


# ---- the ops against dequantize-then-matmul references --------------------------------------


def test_int8_dynamic_activation_op_is_int32_exact():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 64, generator=g)
    w = torch.randn(32, 64, generator=g)
    wq, ws = torch.ops.lowbit.quantize_weight(w, "int8dq")
    y = torch.ops.lowbit.int8_dynamic_activation_int8_linear(x, wq, ws)
    xs, xzp = lowbit.core.choose_qparams_affine(x, (1, 64), "int8")
    xq = lowbit.core.quantize_affine(x, (1, 64), xs, xzp, "int8")
    acc = xq.long() @ wq.long().t()  # exact integer GEMM
    assert torch.equal(y, acc.float() * xs.reshape(-1, 1) * ws.reshape(1, -1))


@pytest.mark.parametrize("name", ["int8wo", "int4wo-64", "int4dq-32", "uint5wo-32", "fp5_e2m2", "float8wo_e4m3"])
def test_weight_only_ops_match_dequantized_matmul(name):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 7, 128, generator=g)
    w = torch.randn(64, 128, generator=g)
    b = torch.randn(64, generator=g)
    parts = torch.ops.lowbit.quantize_weight(w, name)
    wd = torch.ops.lowbit.dequantize_weight(parts, name, 64, 128, torch.float32)
    y = torch.ops.lowbit.quantized_linear(x, parts, name, b)
    assert y.shape == (3, 7, 64)
    if name.startswith("int4dq"):  # activations are fake-quantized to int8 per token
        xs, xzp = lowbit.core.choose_qparams_affine(x.reshape(-1, 128), (1, 128), "int8", "asymmetric")
        xq = lowbit.core.quantize_affine(x.reshape(-1, 128), (1, 128), xs, xzp, "int8")
        x = lowbit.core.dequantize_affine(xq, (1, 128), xs, xzp, "int8").reshape(x.shape)
    if name.startswith("int4wo"):  # tinygemm computes in bfloat16: activations and output rounded to it
        assert sqnr(torch.nn.functional.linear(x.bfloat16().float(), wd, b), y) > 40
    else:
        torch.testing.assert_close(y, torch.nn.functional.linear(x, wd, b), rtol=1e-5, atol=1e-4)
    assert sqnr(w, wd) > {"int8wo": 38, "int4wo-64": 17, "int4dq-32": 17, "uint5wo-32": 23, "fp5_e2m2": 17,
                          "float8wo_e4m3": 28}[name], sqnr(w, wd)


def test_op_errors_name_the_problem():
    w = torch.randn(64, 128)
    parts = torch.ops.lowbit.quantize_weight(w, "int8wo")
    with pytest.raises(RuntimeError, match="in_features"):
        torch.ops.lowbit.int8_weight_only_linear(torch.randn(2, 100), parts[0], parts[1])
    with pytest.raises(RuntimeError, match="bias"):
        torch.ops.lowbit.int8_weight_only_linear(torch.randn(2, 128), parts[0], parts[1], torch.randn(3))
    with pytest.raises(RuntimeError, match="int64|dtype"):
        torch.ops.lowbit.int8_weight_only_linear(torch.randn(2, 128).long(), parts[0], parts[1])
    with pytest.raises(RuntimeError, match="cannot quantize"):
        torch.ops.lowbit.quantize_weight(torch.randn(64, 96), "int4wo")


@pytest.mark.parametrize("name", ["int8wo", "int8dq", "int4dq-32", "uint3wo-32", "fp6_e3m2", "float8wo_e5m2",
                                  "float8dq_e4m3_tensor"])
def test_opcheck_quantized_ops(name):
    from torch.library import opcheck
    w = torch.randn(32, 64)
    parts = torch.ops.lowbit.quantize_weight(w, name)
    config = parse_quantize_config(name)
    x = torch.randn(4, 64)
    b = torch.randn(32)
    # The format's own op and its constant arguments, as the QuantizedTensor calls it.
    op = (getattr(torch.ops.lowbit, config.linear_op), (x, *parts, *config.linear_op_args, b))
    # test_schema's mutation check does arithmetic torch lacks for float8 tensors; fake tensors only there.
    utils = ("test_faketensor",) if config.kind.startswith("Float8") else ("test_schema", "test_faketensor")
    opcheck(op[0], op[1], test_utils=utils)
