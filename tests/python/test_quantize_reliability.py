"""The edges of quantize_, autoquant and QAT (issue 14): gradients through every quantized layer,
shapes a format cannot take are skipped (not crashed) by every convert, conversions are
all-or-nothing and report what they did, arguments are checked when given. The rules are the C++
ones; tests/cpp/test_quantize.cpp checks the C++ face of the same classes."""

import warnings

import pytest
import torch

import lowbit
from lowbit import qat
from lowbit.inference import QuantizedTensor

FORMATS = ["int4wo", "int8wo", "int8dq", "int4dq", "float8wo_e4m3", "float8wo_e5m2", "float8dq_e4m3_tensor",
           "float8dq_e4m3_row", "fp6_e3m2", "uint3wo"]


def mlp(dtype=torch.bfloat16, k=256, h=128, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(k, h), torch.nn.GELU(), torch.nn.Linear(h, 64)).to(dtype)


# ---- 1. gradients --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_passes_a_straight_through_gradient(name):
    """An adapter before a frozen quantized layer trains: grad_input = grad @ dequant(W)."""
    model = lowbit.quantize_(mlp(), name)
    adapter = torch.nn.Linear(256, 256).to(torch.bfloat16)
    x = torch.randn(8, 256, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(1))
    model(adapter(x)).float().pow(2).mean().backward()
    assert adapter.weight.grad is not None and adapter.weight.grad.abs().sum() > 0
    assert model[0].bias.grad is not None and model[2].bias.grad is not None

    h = torch.randn(3, 128, dtype=torch.bfloat16, requires_grad=True)
    out = model[2](h)
    g = torch.randn_like(out)
    out.backward(g)
    expected = g.float() @ model[2].weight.dequantize().float()
    torch.testing.assert_close(h.grad.float(), expected, rtol=2e-2, atol=2e-2)


def test_a_quantized_weight_that_requires_grad_is_an_error():
    model = lowbit.quantize_(mlp(), "int8dq")
    model[0].weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match="frozen"):
        model(torch.randn(2, 256, dtype=torch.bfloat16))
    parts = model[2].weight.parts
    with pytest.raises(RuntimeError, match="frozen"):
        torch.ops.lowbit.int8_dynamic_activation_int8_linear(torch.randn(2, 128), parts[0],
                                                             parts[1].clone().requires_grad_(True), None)


def test_opcheck_autograd_registration_of_the_quantized_linears():
    for name in ("int8wo", "int4dq", "float8dq_e4m3_row", "uint3wo"):
        w = QuantizedTensor.from_float(torch.randn(64, 128), name)
        op = getattr(torch.ops.lowbit, w.config.linear_op)
        x = torch.randn(4, 128, requires_grad=True)
        torch.library.opcheck(op, (x, *w.parts, *w.config.linear_op_args, None),
                              test_utils=("test_autograd_registration", "test_faketensor"))


# ---- 2. shape rules ------------------------------------------------------------------------


def test_shapes_a_format_cannot_take_are_skipped_by_every_convert():
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(256, 8), torch.nn.Linear(8, 64), torch.nn.Linear(64, 64))

    with pytest.warns(UserWarning, match="tinygemm"):
        q = lowbit.quantize_(model(), "int4wo-32")
    assert [isinstance(m.weight, QuantizedTensor) for m in q] == [False, False, True]
    assert [n for n, _ in q.lowbit_summary.skipped] == ["0", "1"]
    x = torch.randn(2, 256)
    with torch.no_grad():
        q(x)

    with pytest.warns(UserWarning):
        p = qat.prepare(model(), qat.Int4WeightOnlyQATConfig(32))
    assert [type(m).__name__ for m in p] == ["Linear", "Linear", "FakeQuantizedLinear"]
    qat.convert(p)
    assert [isinstance(m.weight, QuantizedTensor) for m in p] == [False, False, True]

    a = model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = lowbit.autoquant(a, (x,), candidates=["int4wo-32"], include_unquantized=False, warmup=0, iters=1)
    assert plan.chosen == {"0": "none", "1": "none", "2": "int4wo-32"}


# ---- 3. all-or-nothing and summaries --------------------------------------------------------


def test_quantize_over_float8_and_qat_prepared_models_skips_those_layers():
    cfg = lowbit.float8.Float8LinearConfig(emulate=True)
    f8 = lowbit.float8.convert_to_float8_training(mlp(torch.float32), config=cfg)
    with pytest.warns(UserWarning, match="float8_tensorwise"):
        lowbit.quantize_(f8, "int8wo")
    assert not any(isinstance(p, QuantizedTensor) for p in f8.parameters())
    f8(torch.randn(2, 256))  # still runs: the float8 layers were left alone

    prepared = qat.prepare(mlp(torch.float32), qat.Int8DynActInt4WeightQATConfig(32))
    with pytest.warns(UserWarning, match="fake_quant_int4dq-32"):
        lowbit.quantize_(prepared, "int8wo")
    prepared(torch.randn(2, 256))


def test_qat_convert_is_all_or_nothing():
    model = qat.prepare(mlp(torch.float32), qat.Int8DynActInt4WeightQATConfig(32))
    model[2].weight.data = model[2].weight.data.to(torch.float64)  # a dtype the format cannot take
    before = [type(m) for m in model]
    with pytest.raises(RuntimeError, match="weight dtype Double is not float32"):
        qat.convert(model)
    assert [type(m) for m in model] == before and not isinstance(model[0].weight, QuantizedTensor)


def test_the_python_summary_is_the_cpp_one():
    q = lowbit.quantize_(mlp(), "int8wo", modules_to_not_convert=["2"])
    s = q.lowbit_summary
    assert isinstance(s, lowbit.ConvertSummary)
    assert s.converted == ["0 (int8wo)"] and s.skipped == [("2", "in modules_to_not_convert ('2')")]
    assert "converted: 0 (int8wo)" in str(s)


# ---- 7. arguments checked when given --------------------------------------------------------


def test_arguments_are_checked_when_given():
    with pytest.raises(TypeError, match="modules_to_not_convert must be a list"):
        lowbit.quantize_(mlp(), "int8wo", modules_to_not_convert="head")
    with pytest.raises(ValueError, match="group_size must be 32, 64, 128 or 256"):
        qat.Int4WeightOnlyQATConfig(group_size=48)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        qat.Int8DynActInt4WeightQATConfig(group_size=0)
    with pytest.raises(ValueError, match="unknown parameter 'group'.*allowed: bits, group_size"):
        lowbit.inference.UIntXWeightOnlyConfig(3, group=32)
    with pytest.raises(ValueError, match="bits must be an integer or a string, got a bool|must be"):
        lowbit.inference.UIntXWeightOnlyConfig(True)
    with pytest.raises(ValueError, match="dtype must be a torch dtype"):
        lowbit.inference.Float8WeightOnlyConfig(torch.int8)


def test_configs_expose_their_parameters_and_parse_their_names():
    c = lowbit.inference.UIntXWeightOnlyConfig(3, group_size=48)
    assert (c.kind, c.name, c.bits, c.group_size) == ("UIntXWeightOnlyConfig", "uint3wo-48", 3, 48)
    assert lowbit.inference.parse_quantize_config("uint3wo-48") == c
    assert repr(lowbit.inference.Float8WeightOnlyConfig(torch.float8_e5m2)) == \
        "Float8WeightOnlyConfig(dtype=torch.float8_e5m2)"
    assert lowbit.inference.Float8WeightOnlyConfig("e5m2").dtype is torch.float8_e5m2
    with pytest.raises(AttributeError):
        c.granularity
