"""QAT: lowbit::fake_quantize_affine (forward = the affine ops, straight-through gradient),
prepare / convert, prepared-vs-converted agreement, and QAT beating post-training quantization.

Bounds: Int8DynActInt4WeightQATConfig converts to the prepared forward's arithmetic (per-token int8
activations, int4 weights as uint4 codes with zero point 8, which dequantize to the same floats);
only the float32 summation order differs (the CPU's fused int4dq kernels against aten's GEMM), so
one layer agrees to float32 rounding and a two-layer model, where that rounding may flip an int8
activation code of the second layer, to >= 60 dB SQNR (one flip costs ~70 dB). Int4WeightOnlyQATConfig
converts to tinygemm, which keeps scale and zero in bf16 and computes in bf16: each dequantized
weight moves by at most a few bf16 ulps of its group's range, and the test bounds the output SQNR
between prepared and converted models at >= 35 dB (measured ~45 dB).
"""

import math

import pytest
import torch

import lowbit
from lowbit import qat
from lowbit.inference import QuantizedTensor


def sqnr(ref, x):
    ref, x = ref.float(), x.float()
    return 10 * math.log10(ref.pow(2).mean().item() / (ref - x).pow(2).mean().clamp_min(1e-30).item())


def test_fake_quantize_forward_and_straight_through_gradient():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, generator=g, requires_grad=True)
    y = torch.ops.lowbit.fake_quantize_affine(x, [1, 32], "int4", "symmetric", "int")
    xs, xzp = lowbit.core.choose_qparams_affine(x.detach(), (1, 32), "int4")
    q = lowbit.core.quantize_affine(x.detach(), (1, 32), xs, xzp, "int4")
    assert torch.equal(y.detach(), lowbit.core.dequantize_affine(q, (1, 32), xs, xzp, "int4"))
    grad = torch.randn(4, 64, generator=g)
    y.backward(grad)
    assert torch.equal(x.grad, grad)  # straight-through
    torch.library.opcheck(torch.ops.lowbit.fake_quantize_affine, (x.detach(), [1, 32], "int4", "symmetric", "int"),
                          test_utils=("test_faketensor", "test_autograd_registration"))


def test_bad_fake_quantize_configs():
    with pytest.raises(ValueError, match="dtype"):
        qat.FakeQuantizeConfig("int9")
    with pytest.raises(ValueError, match="granularity"):
        qat.FakeQuantizeConfig("int8", "per_block")
    with pytest.raises(ValueError, match="group_size"):
        qat.FakeQuantizeConfig("int4", "per_group")
    with pytest.raises(ValueError, match="dynamic"):
        qat.FakeQuantizeConfig(torch.int8, dynamic=False)
    with pytest.raises(TypeError):
        qat.prepare(torch.nn.Linear(8, 8), "int4")
    m = qat.prepare(torch.nn.Sequential(torch.nn.Linear(32, 32)),
                    (None, qat.FakeQuantizeConfig("int4", "per_group", group_size=16)))
    with pytest.raises(ValueError, match="custom FakeQuantizeConfig pair"):
        qat.convert(m)


def mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(256, 128), torch.nn.GELU(), torch.nn.Linear(128, 64)).to(dtype)


def test_int8_dyn_act_int4_weight_converted_matches_prepared():
    model = qat.prepare(mlp(), qat.Int8DynActInt4WeightQATConfig(group_size=32))
    assert isinstance(model[0], qat.FakeQuantizedLinear)
    x = torch.randn(6, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        prepared, prepared_first = model(x), model[0](x)
    qat.convert(model)
    assert isinstance(model[0].weight, QuantizedTensor) and model[0].weight.config_name == "int4dq-32"
    with torch.no_grad():
        torch.testing.assert_close(model[0](x), prepared_first, rtol=1e-5, atol=1e-5)
        assert sqnr(prepared, model(x)) >= 60.0


def test_int4_weight_only_converted_matches_prepared_within_bound():
    model = qat.prepare(mlp(torch.bfloat16), qat.Int4WeightOnlyQATConfig(group_size=128))
    x = torch.randn(6, 256, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    with torch.no_grad():
        prepared = model(x)
    qat.convert(model)
    assert model[0].weight.config_name == "int4wo-128"
    with torch.no_grad():
        assert sqnr(prepared, model(x)) >= 35.0


def test_qat_beats_post_training_quantization():
    """Distill a fixed two-layer teacher (128 -> 128 -> 32, ReLU) into int8-act x int4-weight (group
    32). PTQ rounds the teacher's weights; QAT fine-tunes from the same weights for 200 SGD steps
    through the fake-quant forward, then converts. The converted QAT model's test error must be at
    least 15% below PTQ's (measured: ~33% lower). (Adam's sign-like steps of fixed size flip codes
    back and forth at this scale; plain SGD follows the straight-through gradient.)"""
    import copy

    g = torch.Generator().manual_seed(3)
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 32))
    x_train, x_test = torch.randn(4096, 128, generator=g), torch.randn(512, 128, generator=g)
    with torch.no_grad():
        y_train, y_test = teacher(x_train), teacher(x_test)

    ptq = lowbit.quantize_(copy.deepcopy(teacher), "int4dq-32")
    with torch.no_grad():
        ptq_mse = (ptq(x_test) - y_test).pow(2).mean().item()

    model = qat.prepare(copy.deepcopy(teacher), qat.Int8DynActInt4WeightQATConfig(group_size=32))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(200):
        idx = torch.randint(0, 4096, (256,), generator=g)
        loss = (model(x_train[idx]) - y_train[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    qat.convert(model)
    with torch.no_grad():
        qat_mse = (model(x_test) - y_test).pow(2).mean().item()
    assert qat_mse < 0.85 * ptq_mse, (qat_mse, ptq_mse)
