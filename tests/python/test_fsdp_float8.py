"""FSDP2 float8 all-gather on CPU: 2 Gloo ranks (spawned processes, every collective under a timeout).

The sharded float8 model (tensorwise, fp8 all-gather, a 33-row weight split unevenly over 2 ranks)
must equal the unsharded float8 model whose gradients are averaged over the ranks, bit for bit,
over several AdamW steps; the bytes FSDP all-gathers are counted. Scenarios run in a few launches
(spawning ranks costs seconds), each case reporting its own result or traceback.
"""

import copy
import os
import tempfile

import pytest
import torch
import torch.nn as nn

import lowbit
from lowbit.float8 import (Float8AllGatherWeight, Float8GatheredWeight, Float8Linear, Float8LinearConfig,
                           convert_to_float8_training, precompute_float8_dynamic_scale_for_fsdp)

from dist_launch import run_on_ranks

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with Gloo")

WORLD = 2


def _launch(cases, timeout=600):
    results = run_on_ranks("fsdp_workers:scenarios", world_size=WORLD, timeout=timeout, cases=cases)
    return {name: [r[name] for r in results] for name, _, _ in cases}


def _ok(per_rank):
    for r in per_rank:
        assert "error" not in r, r["error"]
    return per_rank


PARITY_CASES = [
    ("reshard", "parity", dict(reshard_after_forward=True)),
    ("no_reshard", "parity", dict(reshard_after_forward=False)),
    ("reshard_precompute", "parity", dict(reshard_after_forward=True, precompute=True)),
    ("no_reshard_precompute", "parity", dict(reshard_after_forward=False, precompute=True)),
    ("checkpoint", "parity", dict(checkpoint=True)),
    ("mixed_precision", "mixed_precision", {}),
    ("mixed_precision_precompute", "mixed_precision", dict(precompute=True)),
    ("bytes_fp8", "comm_bytes", dict(mode="fp8")),
    ("bytes_fp8_precompute", "comm_bytes", dict(mode="fp8", precompute=True)),
    ("bytes_fp32", "comm_bytes", dict(mode="fp32")),
    ("bytes_bf16", "comm_bytes", dict(mode="bf16")),
]


@pytest.fixture(scope="module")
def parity_results():
    return _launch(PARITY_CASES)


@pytest.mark.parametrize("case", ["reshard", "no_reshard", "reshard_precompute", "no_reshard_precompute",
                                  "checkpoint", "mixed_precision", "mixed_precision_precompute"])
def test_sharded_float8_equals_unsharded(parity_results, case):
    """Loss at every step and every parameter after the steps: identical (max difference 0.0)."""
    for r in _ok(parity_results[case]):
        assert r["losses"] == r["ref_losses"]
        assert r["max_param_diff"] == 0.0
    assert parity_results[case][0]["losses"] != parity_results[case][1]["losses"]  # ranks saw different data


# Layer shapes of fsdp_workers.make_model: (out, in, bias); 33 rows pad to 34 on 2 ranks.
_LAYERS = [(64, 32, True), (33, 64, False), (16, 33, True)]


def _padded_rows(n):
    return -(-n // WORLD) * WORLD


def test_fp8_all_gather_moves_one_byte_per_weight_element(parity_results):
    weights = sum(_padded_rows(n) * k for n, k, _ in _LAYERS)  # 4752 elements
    biases = sum(_padded_rows(n) for n, _, b in _LAYERS if b)  # travel in the weight's dtype, 4 bytes each
    fp8, fp32, bf16 = (_ok(parity_results[k])[0] for k in ("bytes_fp8", "bytes_fp32", "bytes_bf16"))
    assert fp8["all_gather_bytes"] == weights * 1 + biases * 4
    assert fp8["dtypes"] == ["torch.uint8"]  # Gloo carries no float8 dtype
    assert fp32["all_gather_bytes"] == weights * 4 + biases * 4
    assert bf16["all_gather_bytes"] == weights * 2 + biases * 2
    # the scales: one 4-byte amax all-reduce per float8 weight per gather
    assert fp8["all_reduces"] == 3 and fp8["all_reduce_bytes"] == 3 * 4
    assert fp32["all_reduces"] == 0


def test_precompute_is_one_all_reduce_for_the_model(parity_results):
    r = _ok(parity_results["bytes_fp8_precompute"])[0]
    assert r["precompute_all_reduces"] == 1 and r["precompute_all_reduce_bytes"] == 3 * 4
    assert r["all_reduces"] == 0  # the gathers use the precomputed amaxes
    assert r["all_gather_bytes"] == _ok(parity_results["bytes_fp8"])[0]["all_gather_bytes"]


STATE_CASES = [
    ("dcp_AdamW", "dcp_resume", dict(optim="AdamW")),
    *[(f"dcp_{n}", "dcp_resume", dict(optim=n)) for n in ("AdamW8bit", "AdamW4bit", "AdamWFp8")],
    *[(f"optim_{n}", "lowbit_optimizer", dict(name=n)) for n in ("AdamW8bit", "AdamW4bit", "AdamWFp8")],
]


@pytest.fixture(scope="module")
def state_results():
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(name, fn, {**kw, "path": os.path.join(tmp, name)} if fn == "dcp_resume" else kw)
                 for name, fn, kw in STATE_CASES]
        yield _launch(cases)


@pytest.mark.parametrize("optim", ["AdamW", "AdamW8bit", "AdamW4bit", "AdamWFp8"])
def test_dcp_save_load_resumes_exactly(state_results, optim):
    """torch.distributed.checkpoint of the sharded float8 model and its optimizer, saved after 2 of 4
    steps and loaded into a fresh sharded model: the 4 losses equal those of the uninterrupted run."""
    for rank, r in enumerate(_ok(state_results[f"dcp_{optim}"])):
        assert r["resumed_losses"] == r["losses"]
        if optim != "AdamW":  # a shard's low-bit state is saved under its rank's keys
            assert all(k.endswith(f"@rank{rank}") for k in r["state_keys"])


@pytest.mark.parametrize("optim", ["AdamW8bit", "AdamW4bit", "AdamWFp8"])
def test_lowbit_optimizers_step_fsdp2_dtensor_parameters(state_results, optim):
    """Each rank's shard steps exactly as the same optimizer stepping that shard as a plain tensor."""
    for r in _ok(state_results[f"optim_{optim}"]):
        assert r["max_diff"] == 0.0
        assert r["moved"] > 0.0


def test_torch_compile_with_fp8_all_gather():
    """torch.compile of the FSDP2 model: inductor may fuse the float32 loss and bias arithmetic
    differently, so equality is to float32 rounding, not bitwise."""
    results = _launch([("compile", "parity", dict(compile=True, steps=3))])["compile"]
    for r in _ok(results):
        assert r["losses"] == pytest.approx(r["ref_losses"], rel=1e-5)
        assert r["max_param_diff"] < 1e-6


# ---- one process: the weight subclass without FSDP, the config rules, the op ---------------------

def _cfg(**kw):
    return Float8LinearConfig(emulate=True, **kw)


def test_flag_without_fsdp_computes_as_without_it():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 16))
    plain = convert_to_float8_training(copy.deepcopy(base), config=_cfg())
    wrapped = convert_to_float8_training(copy.deepcopy(base), config=_cfg(enable_fsdp_float8_all_gather=True))
    assert isinstance(wrapped[0].weight, Float8AllGatherWeight)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (plain, wrapped)]
    for step in range(3):
        x = torch.randn(8, 32)
        for m, o in zip((plain, wrapped), opts):
            m(x).square().mean().backward()
            o.step()
            o.zero_grad()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        q = q._tensor if isinstance(q, Float8AllGatherWeight) else q
        assert torch.equal(p.detach(), q.detach())
    # state dicts move between the two forms
    plain.load_state_dict(wrapped.state_dict())
    wrapped.load_state_dict(plain.state_dict())
    copy.deepcopy(wrapped)


def test_writing_a_weight_drops_its_precomputed_amax():
    lin = Float8Linear(32, 16, config=_cfg(enable_fsdp_float8_all_gather=True))
    precompute_float8_dynamic_scale_for_fsdp(lin)
    w = lin.weight
    assert torch.equal(w._precomputed_amax, w._tensor.abs().max())
    with torch.no_grad():
        w.add_(1.0)
    assert w._precomputed_amax is None


@pytest.mark.parametrize("recipe", ["rowwise", "rowwise_with_gw_hp"])
def test_fp8_all_gather_with_rowwise_is_a_clear_error(recipe):
    with pytest.raises(ValueError, match="needs the tensorwise recipe.*per-column"):
        Float8LinearConfig.from_recipe_name(recipe, enable_fsdp_float8_all_gather=True)


def test_fp8_all_gather_with_recompute_is_a_clear_error():
    with pytest.raises(ValueError, match="no cast to recompute"):
        Float8LinearConfig(enable_fsdp_float8_all_gather=True, force_recompute_fp8_weight_in_bwd=True)


def test_gathered_weight_refuses_other_ops():
    data, scale = lowbit.core.cast_to_float8(torch.randn(16, 32), torch.float8_e4m3fn)
    w = Float8GatheredWeight(data, scale, torch.float32, False)
    with pytest.raises(RuntimeError, match="only Float8Linear's op reads it"):
        w + 1


def test_precast_op_equals_float8_linear_tensorwise(rng):
    x = torch.randn(4, 8, 32, generator=rng, requires_grad=True)
    w = torch.randn(48, 32, generator=rng, requires_grad=True)
    b = torch.randn(48, generator=rng, requires_grad=True)
    amax = lowbit.core.float8_amax([w.detach()])
    scale = lowbit.core.float8_amax_to_scale(amax).reshape(())
    w8 = lowbit.core.cast_to_float8_with_scale(w.detach(), scale)
    ref_data, ref_scale = lowbit.core.cast_to_float8(w.detach(), torch.float8_e4m3fn, "tensor")
    assert torch.equal(w8.view(torch.uint8), ref_data.view(torch.uint8)) and torch.equal(scale, ref_scale)
    y = torch.ops.lowbit.float8_linear_precast(x, w, w8, scale, b, True, False)
    y_ref = torch.ops.lowbit.float8_linear(x, w, b, "tensorwise", True, False, False)
    assert torch.equal(y, y_ref)
    g = torch.randn(y.shape, generator=rng)
    for a, r in zip(torch.autograd.grad(y, (x, w, b), g), torch.autograd.grad(y_ref, (x, w, b), g)):
        assert torch.equal(a, r)
    # the weight's values are never read: a zero-stride placeholder gives the same result
    ph = torch.zeros(()).expand(48, 32).requires_grad_()
    assert torch.equal(torch.ops.lowbit.float8_linear_precast(x, ph, w8, scale, b, True, False), y)


def test_opcheck_precast(rng):
    """(The scale ops' opchecks are in test_compile.py with the other core ops.) test_schema
    compares fp8 inputs arithmetically, which torch does not implement for fp8."""
    scale = torch.tensor(0.01)
    w8 = lowbit.core.cast_to_float8_with_scale(torch.randn(16, 32, generator=rng), scale)
    inp = torch.randn(4, 32, generator=rng, requires_grad=True)
    w = torch.randn(16, 32, generator=rng, requires_grad=True)
    b = torch.randn(16, generator=rng, requires_grad=True)
    for bias in (None, b):
        torch.library.opcheck(torch.ops.lowbit.float8_linear_precast.default, (inp, w, w8, scale, bias, True, False),
                              test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_static",
                                          "test_aot_dispatch_dynamic"))


def test_float8_scale_ops_check_arguments():
    with pytest.raises(RuntimeError, match="empty list of Tensors"):
        lowbit.core.float8_amax([])
    with pytest.raises(RuntimeError, match="one value"):
        lowbit.core.cast_to_float8_with_scale(torch.randn(4, 4), torch.ones(2))
    with pytest.raises(RuntimeError, match="float8_e4m3fn"):
        torch.ops.lowbit.float8_linear_precast(torch.randn(2, 8), torch.randn(4, 8), torch.zeros(4, 8, dtype=torch.uint8),
                                               torch.tensor(1.0), None, True, False)


def test_amax_skips_non_finite_like_cast_to_float8():
    # amax over the finite values (core::float8_amax_term), as cast_to_float8 takes it; the three
    # steps then give cast_to_float8's bytes: inf saturates to +-max finite, NaN stays NaN.
    x = torch.tensor([1.0, float("nan"), -3.0, float("inf"), -float("inf"), 0.5])
    assert lowbit.core.float8_amax([x, torch.empty(0), torch.tensor([float("inf")])]).tolist() == [3.0, 0.0, 0.0]
    data, s = lowbit.core.cast_to_float8(x, torch.float8_e4m3fn, "tensor")
    scale = lowbit.core.float8_amax_to_scale(lowbit.core.float8_amax([x]))
    assert torch.equal(scale.reshape(()), s.reshape(()))
    split = lowbit.core.cast_to_float8_with_scale(x, scale.reshape(()), torch.float8_e4m3fn)
    assert torch.equal(split.view(torch.uint8), data.view(torch.uint8))


# ---- GPU (skipped without one): the CUDA kernels of the scale ops, the fp8 GEMM path, NCCL -----

@pytest.mark.cuda
def test_float8_scale_ops_cuda_match_cpu(rng):
    xs = [torch.randn(257, 129, generator=rng) * 7, torch.randn(1000, generator=rng).bfloat16(),
          torch.tensor([1.0, float("nan"), -3.0]), torch.empty(0)]
    amax_cpu = lowbit.core.float8_amax(xs)
    amax_gpu = lowbit.core.float8_amax([x.cuda() for x in xs])
    assert torch.equal(amax_gpu.cpu(), amax_cpu)
    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        for pow2 in (False, True):
            s_cpu = lowbit.core.float8_amax_to_scale(amax_cpu, dtype, power_of_2_scale=pow2)
            s_gpu = lowbit.core.float8_amax_to_scale(amax_cpu.cuda(), dtype, power_of_2_scale=pow2)
            assert torch.equal(s_gpu.cpu(), s_cpu)
            for x, s in zip(xs[:2], s_cpu[:2]):
                c = lowbit.core.cast_to_float8_with_scale(x, s, dtype)
                g = lowbit.core.cast_to_float8_with_scale(x.cuda(), s.cuda(), dtype)
                assert torch.equal(g.cpu().view(torch.uint8), c.view(torch.uint8))


@pytest.mark.cuda
def test_precast_op_cuda_fp8_gemm_equals_float8_linear(rng):
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("needs fp8 tensor cores (sm_89+)")
    x = torch.randn(64, 256, generator=rng).cuda().bfloat16().requires_grad_()
    w = torch.randn(512, 256, generator=rng).cuda().requires_grad_()
    amax = lowbit.core.float8_amax([w.detach()])
    scale = lowbit.core.float8_amax_to_scale(amax).reshape(())
    w8 = lowbit.core.cast_to_float8_with_scale(w.detach(), scale)
    y = torch.ops.lowbit.float8_linear_precast(x, w, w8, scale, None, False, False)
    y_ref = torch.ops.lowbit.float8_linear(x, w, None, "tensorwise", False, False, False)
    assert torch.equal(y, y_ref)
    g = torch.randn_like(y)
    for a, r in zip(torch.autograd.grad(y, (x, w), g), torch.autograd.grad(y_ref, (x, w), g)):
        assert torch.equal(a, r)


@pytest.mark.cuda
def test_fsdp2_fp8_all_gather_on_nccl_world_size_1():
    """One GPU: NCCL with world size 1 runs FSDP2's hooks, the uint8 gather and the fp8 GEMMs."""
    results = run_on_ranks("fsdp_workers:nccl_one_rank", world_size=1, timeout=300, backend="cpu:gloo,cuda:nccl")
    r = results[0]
    assert r["losses"] == r["ref_losses"]
    assert r["max_param_diff"] == 0.0
