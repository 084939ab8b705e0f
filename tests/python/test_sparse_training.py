"""2:4 sparse training on CPU (the exact reference): the training math of both ops against a
dense model with the mask applied by hand (forward, grad_input, grad_weight, for ste and masked),
gradcheck in double, opcheck, torch.compile(fullgraph=True), the config, the convert functions
and their rules, clear errors; and on CUDA (skipped without a GPU) the cuSPARSELt path against
the CPU reference."""

import copy
import pickle

import pytest
import torch
import torch.nn as nn

import lowbit
from lowbit.core import prune_2_4
from lowbit.sparse import (
    SemiSparseActivationLinear,
    SemiSparseLinear,
    SemiSparseTrainingConfig,
    convert_to_semi_sparse_training,
    swap_linear_with_semi_sparse_linear,
    swap_semi_sparse_linear_with_linear,
)

ops = torch.ops.lowbit
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
ALL = lambda m, fqn: True  # noqa: E731  (a user filter: convert every layer the shape rule allows)


def by_hand_weight_sparse(x, w, b, gy, algorithm, gradient):
    """y = x (W⊙M)^T + b with autograd on the masked weight; the weight gradient is then
    unmasked (ste: d/d(W⊙M)) or masked, as the op's docs say."""
    wp, mask = prune_2_4(w.detach(), algorithm)
    wp = wp.clone().requires_grad_()
    x = x.detach().clone().requires_grad_()
    b = None if b is None else b.detach().clone().requires_grad_()
    y = torch.nn.functional.linear(x, wp, b)
    y.backward(gy)
    gw = wp.grad if gradient == "ste" else wp.grad * mask
    return y, x.grad, gw, None if b is None else b.grad


def by_hand_activation_sparse(x, w, b, gy, algorithm, gradient):
    x2 = x.detach().reshape(-1, x.shape[-1])
    xp, mask = prune_2_4(x2, algorithm)
    xp = xp.clone().requires_grad_()
    w = w.detach().clone().requires_grad_()
    b = None if b is None else b.detach().clone().requires_grad_()
    y = torch.nn.functional.linear(xp, w, b)
    y.backward(gy.reshape(-1, gy.shape[-1]))
    gx = xp.grad if gradient == "ste" else xp.grad * mask
    return y.reshape(*x.shape[:-1], -1), gx.reshape(x.shape), w.grad, None if b is None else b.grad


@pytest.mark.parametrize("gradient", ["ste", "masked"])
@pytest.mark.parametrize("algorithm", ["largest_abs", "largest"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", [False, True], ids=["weight", "activation"])
def test_training_math_matches_the_mask_applied_by_hand(gradient, algorithm, bias, activation, rng):
    x = torch.randn(2, 6, 32, generator=rng, dtype=torch.float64)
    w = torch.randn(24, 32, generator=rng, dtype=torch.float64)
    b = torch.randn(24, generator=rng, dtype=torch.float64) if bias else None
    gy = torch.randn(2, 6, 24, generator=rng, dtype=torch.float64)
    op = ops.semi_sparse_activation_linear if activation else ops.semi_sparse_linear
    by_hand = by_hand_activation_sparse if activation else by_hand_weight_sparse
    xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
    bs = None if b is None else b.clone().requires_grad_()
    y = op(xs, ws, bs, algorithm, gradient)
    y.backward(gy)
    ry, rgx, rgw, rgb = by_hand(x, w, b, gy, algorithm, gradient)
    torch.testing.assert_close(y, ry, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xs.grad, rgx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ws.grad, rgw, rtol=1e-12, atol=1e-12)
    if bias:
        torch.testing.assert_close(bs.grad, rgb, rtol=1e-12, atol=1e-12)
    # ste and masked differ exactly where the mask is off (the master tensor's pruned entries)
    master_grad = xs.grad if activation else ws.grad
    mask = prune_2_4((x.reshape(-1, 32) if activation else w), algorithm)[1].reshape(master_grad.shape)
    if gradient == "masked":
        assert (master_grad[~mask] == 0).all()
    else:
        assert (master_grad[~mask] != 0).float().mean() > 0.9


def test_masks_follow_the_weight_every_call(rng):
    """The weight is pruned at every forward from the current dense master weight, never in place."""
    lin = SemiSparseLinear(16, 8)
    before = lin.weight.detach().clone()
    x = torch.randn(4, 16, generator=rng)
    y1 = lin(x)
    assert torch.equal(lin.weight, before)  # the master weight stays dense
    with torch.no_grad():
        lin.weight.mul_(-1).add_(torch.randn(8, 16, generator=rng))
    y2 = lin(x)
    torch.testing.assert_close(y2, x @ prune_2_4(lin.weight.detach())[0].t() + lin.bias)
    assert not torch.allclose(y1, y2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_with_a_float32_master_weight(dtype, rng):
    """The op computes in the input's dtype: the float32 weight is pruned in float32, then cast;
    gradients come back in each tensor's own dtype."""
    x = torch.randn(8, 32, generator=rng).to(dtype).requires_grad_()
    w = torch.randn(16, 32, generator=rng).requires_grad_()
    b = torch.randn(16, generator=rng).requires_grad_()
    y = ops.semi_sparse_linear(x, w, b)
    assert y.dtype == dtype
    wp = prune_2_4(w.detach())[0]
    torch.testing.assert_close(y, (x.detach().float() @ wp.to(dtype).float().t() + b.detach().to(dtype).float()).to(dtype),
                               rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert x.grad.dtype == dtype and w.grad.dtype == torch.float32 and b.grad.dtype == torch.float32


def test_gradcheck_in_double(rng):
    """masked is the exact derivative of the pruned forward, so gradcheck holds for every input;
    ste is not a derivative (it is defined to skip the mask), so for ste gradcheck covers the other
    inputs and the master tensor's gradient is checked against its formula by hand above."""
    x = torch.randn(3, 16, generator=rng, dtype=torch.float64, requires_grad=True)
    x4 = torch.randn(8, 16, generator=rng, dtype=torch.float64, requires_grad=True)
    w = torch.randn(12, 16, generator=rng, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, generator=rng, dtype=torch.float64, requires_grad=True)
    lin = lambda x, w, b, g: ops.semi_sparse_linear(x, w, b, "largest_abs", g)  # noqa: E731
    act = lambda x, w, b, g: ops.semi_sparse_activation_linear(x, w, b, "largest", g)  # noqa: E731
    assert torch.autograd.gradcheck(lambda x, w, b: lin(x, w, b, "masked"), (x, w, b))
    assert torch.autograd.gradcheck(lambda x, b: lin(x, w.detach(), b, "ste"), (x, b))
    assert torch.autograd.gradcheck(lambda x, w, b: act(x, w, b, "masked"), (x4, w, b))
    assert torch.autograd.gradcheck(lambda w, b: act(x4.detach(), w, b, "ste"), (w, b))
    assert torch.autograd.gradgradcheck is not None  # second derivatives are not supported (not needed)


def test_opcheck(rng):
    x = torch.randn(8, 32, generator=rng, requires_grad=True)
    w = torch.randn(16, 32, generator=rng, requires_grad=True)
    b = torch.randn(16, generator=rng, requires_grad=True)
    utils = ("test_schema", "test_faketensor", "test_autograd_registration", "test_aot_dispatch_static",
             "test_aot_dispatch_dynamic")
    for gradient in ("ste", "masked"):
        torch.library.opcheck(ops.semi_sparse_linear.default, (x, w, b, "largest_abs", gradient), test_utils=utils)
        torch.library.opcheck(ops.semi_sparse_activation_linear.default, (x, w, None, "largest", gradient),
                              test_utils=utils)
    wp = prune_2_4(w.detach())[0]
    for transpose in (False, True):
        torch.library.opcheck(ops.semi_sparse_mm.default, (wp, x.detach().t(), b.detach(), transpose),
                              test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static",
                                          "test_aot_dispatch_dynamic"))


def _mlp():
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16))


def test_compile_fullgraph_matches_eager(rng):
    torch.manual_seed(0)
    model = _mlp()
    swap_linear_with_semi_sparse_linear(model, {"0": SemiSparseLinear, "2": SemiSparseActivationLinear})
    x = torch.randn(16, 32, generator=rng)
    eager_x = x.clone().requires_grad_()
    model(eager_x).square().sum().backward()
    eager = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    comp_x = x.clone().requires_grad_()
    compiled(comp_x).square().sum().backward()
    torch.testing.assert_close(comp_x.grad, eager_x.grad, rtol=1e-4, atol=1e-5)
    for p, g in zip(model.parameters(), eager):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)


def test_semi_sparse_mm_reference(rng):
    a = prune_2_4(torch.randn(16, 32, generator=rng))[0]
    d = torch.randn(32, 8, generator=rng)
    bias = torch.randn(16, generator=rng)
    torch.testing.assert_close(ops.semi_sparse_mm(a, d, bias), a @ d + bias[:, None])
    t = ops.semi_sparse_mm(a, d, bias, True)
    assert t.shape == (8, 16) and t.is_contiguous()
    torch.testing.assert_close(t, (a @ d + bias[:, None]).t())
    with pytest.raises(RuntimeError, match="not 2:4 along its rows .* holds 3 nonzeros"):
        ops.semi_sparse_mm(torch.tensor([[1.0, 1.0, 1.0, 0.0]]), torch.ones(4, 2))
    with pytest.raises(RuntimeError, match="must have one dtype"):
        ops.semi_sparse_mm(a, d.double())
    before = lowbit.core.kernel_path_counts()["semi_sparse_mm/reference"]
    ops.semi_sparse_mm(a, d)
    assert lowbit.core.kernel_path_counts()["semi_sparse_mm/reference"] == before + 1
    assert lowbit.core.last_kernel_path("semi_sparse_mm") == "reference"


def test_training_op_errors_name_the_argument():
    x, w = torch.randn(8, 16), torch.randn(12, 16)
    with pytest.raises(RuntimeError, match="'largest_abs_rows' is not transposable .*grad_input"):
        ops.semi_sparse_linear(x, w, None, "largest_abs_rows")
    with pytest.raises(RuntimeError, match="unknown gradient 'dense'; allowed: 'ste', 'masked'"):
        ops.semi_sparse_linear(x, w, None, "largest_abs", "dense")
    with pytest.raises(RuntimeError, match=r"weight shape \[10, 16\] must have both dims multiples of 4"):
        ops.semi_sparse_linear(x, torch.randn(10, 16))
    with pytest.raises(RuntimeError, match="holds 6 rows of in_features .* must be a multiple of 4"):
        ops.semi_sparse_activation_linear(torch.randn(2, 3, 16), w)
    with pytest.raises(RuntimeError, match=r"input's last dim \(8\) must equal in_features \(16\)"):
        ops.semi_sparse_linear(torch.randn(4, 8), w)
    for device in ("cpu", "meta"):  # the Meta path rejects what the CPU rejects
        with pytest.raises(RuntimeError, match="must have both dims multiples of 4"):
            ops.semi_sparse_linear(torch.randn(8, 16, device=device), torch.randn(10, 16, device=device))


def test_config_is_one_cpp_struct():
    c = SemiSparseTrainingConfig()
    assert (c.target, c.algorithm, c.gradient) == ("weight", "largest_abs", "ste")
    c = SemiSparseTrainingConfig(target="activation", algorithm="largest", gradient="masked")
    assert pickle.loads(pickle.dumps(c)) == c
    assert "target='activation'" in repr(c)
    with pytest.raises(ValueError, match="unknown option 'grad'"):
        SemiSparseTrainingConfig(grad="ste")
    with pytest.raises(ValueError, match="not transposable"):
        SemiSparseTrainingConfig(algorithm="largest_abs_rows")
    with pytest.raises(ValueError, match="unknown target 'input'"):
        SemiSparseTrainingConfig(target="input")
    with pytest.raises(ValueError, match="prunes the weight"):
        SemiSparseLinear(8, 8, config=SemiSparseTrainingConfig(target="activation"))


def test_convert_reports_what_it_did_and_why():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.Linear(8, 6))
    summary = convert_to_semi_sparse_training(model)  # default filter: nothing measured faster on a CPU
    assert summary.converted == []
    assert [name for name, _ in summary.skipped] == ["0", "2", "3"]
    assert "never faster than dense" in dict(summary.skipped)["0"]
    assert "multiples of 4" in dict(summary.skipped)["3"]
    assert all(type(m) is not SemiSparseLinear for m in model)

    summary = convert_to_semi_sparse_training(model, module_filter_fn=lambda m, fqn: fqn != "2")
    assert summary.converted == ["0 (semi_sparse_weight)"]
    assert dict(summary.skipped) == {"2": "excluded by the filter",
                                     "3": "in_features=8, out_features=6: both must be multiples of 4 (4x4 tiles of "
                                          "the weight)"}
    assert "converted: 0 (semi_sparse_weight)" in str(summary)
    assert type(model[0]) is SemiSparseLinear and type(model[2]) is nn.Linear

    again = convert_to_semi_sparse_training(model, module_filter_fn=ALL)
    assert dict(again.skipped)["0"] == "already semi-sparse" and again.converted == ["2 (semi_sparse_weight)"]


def test_convert_to_activation_sparsity_and_back():
    model = _mlp()
    plain = copy.deepcopy(model)
    config = SemiSparseTrainingConfig(target="activation", gradient="masked")
    summary = convert_to_semi_sparse_training(model, config=config, module_filter_fn=lambda m, fqn: fqn in ("2", "4"))
    assert summary.converted == ["2 (semi_sparse_activation)", "4 (semi_sparse_activation)"]
    assert type(model[2]) is SemiSparseActivationLinear and model[2].config == config
    swap_semi_sparse_linear_with_linear(model)
    assert all(type(m) in (nn.Linear, nn.ReLU) for m in model)
    x = torch.randn(4, 32)
    assert torch.equal(model(x), plain(x))  # the dense master weights were never touched


def test_dense_after_sparse_can_start_from_the_pruned_weights(rng):
    """prune_weights=True: the dense model computes what the sparse one computed at the switch."""
    model = _mlp()
    convert_to_semi_sparse_training(model, module_filter_fn=lambda m, fqn: fqn in ("0", "2"))
    swap_linear_with_semi_sparse_linear(model, {"4": SemiSparseActivationLinear})
    x = torch.randn(8, 32, generator=rng)
    with torch.no_grad():
        sparse_out = model(x)
    w4 = model[4].weight.detach().clone()
    swap_semi_sparse_linear_with_linear(model, prune_weights=True)
    assert all(type(m) in (nn.Linear, nn.ReLU) for m in model)
    assert torch.equal(model[4].weight, w4)  # activation-sparse layers keep their (dense) weights
    assert (model[0].weight == 0).float().mean() >= 0.5
    x4 = x  # 8 tokens: the activation-sparse layer pruned its input; the dense one does not
    with torch.no_grad():
        model[4] = SemiSparseActivationLinear.from_dense(model[4])
        torch.testing.assert_close(model(x4), sparse_out)


def test_parameters_and_state_dicts_are_shared_with_the_dense_model():
    lin = nn.Linear(32, 16)
    model = nn.Sequential(lin)
    w = lin.weight
    swap_linear_with_semi_sparse_linear(model, {"0": SemiSparseLinear})
    assert model[0].weight is w
    sd = model.state_dict()
    assert set(sd) == {"0.weight", "0.bias"}
    fresh = nn.Sequential(nn.Linear(32, 16))
    fresh.load_state_dict(sd)
    assert torch.equal(fresh[0].weight, w)
    back = swap_semi_sparse_linear_with_linear(model)
    assert back[0].weight is w and type(back[0]) is nn.Linear


def test_torchao_swap_errors_change_nothing():
    model = nn.Sequential(nn.Linear(32, 16), nn.Linear(16, 6))
    with pytest.raises(ValueError, match="has no submodule 'fc'"):
        swap_linear_with_semi_sparse_linear(model, {"0": SemiSparseLinear, "fc": SemiSparseLinear})
    with pytest.raises(ValueError, match="'1' cannot train with 2:4 sparsity: in_features=16, out_features=6"):
        swap_linear_with_semi_sparse_linear(model, {"0": SemiSparseLinear, "1": SemiSparseLinear})
    with pytest.raises(ValueError, match="allowed: SemiSparseLinear, SemiSparseActivationLinear"):
        swap_linear_with_semi_sparse_linear(model, {"0": nn.Linear})
    assert all(type(m) is nn.Linear for m in model)
    # activation sparsity prunes the input: out_features=6 is fine
    swap_linear_with_semi_sparse_linear(model, {"1": SemiSparseActivationLinear})
    assert type(model[1]) is SemiSparseActivationLinear


def test_root_and_other_linears_are_reported_not_swapped():
    summary = convert_to_semi_sparse_training(nn.Linear(16, 16), module_filter_fn=ALL)
    assert "root module cannot be swapped" in dict(summary.skipped)[""]
    cfg = lowbit.float8.Float8LinearConfig(emulate=True)
    model = lowbit.float8.convert_to_float8_training(nn.Sequential(nn.Linear(32, 32)), config=cfg)
    summary = convert_to_semi_sparse_training(model, module_filter_fn=ALL)
    assert dict(summary.skipped)["0"] == "is a Float8Linear; 2:4 replaces plain nn.Linear only"


def test_a_sparse_mlp_fits_a_dense_teacher_almost_as_well_as_dense(rng):
    torch.manual_seed(0)
    teacher = _mlp()
    x = torch.randn(256, 32, generator=rng)
    with torch.no_grad():
        target = teacher(x)
    final = {}
    for name in ("dense", "ste", "masked"):
        torch.manual_seed(1)
        model = _mlp()
        if name != "dense":
            config = SemiSparseTrainingConfig(gradient=name)
            convert_to_semi_sparse_training(model, config=config, module_filter_fn=ALL)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(150):
            loss = (model(x) - target).square().mean()
            if step == 0:
                first = loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        final[name] = loss.item()
        assert final[name] < 0.3 * first, (name, first, final[name])
    print(final)
    assert final["ste"] < 3 * final["dense"] + 1e-3 and final["masked"] < 3 * final["dense"] + 1e-3


def test_activation_checkpointing_gives_the_same_gradients(rng):
    from torch.utils.checkpoint import checkpoint

    model = _mlp()
    convert_to_semi_sparse_training(model, module_filter_fn=ALL)
    x = torch.randn(8, 32, generator=rng)
    model(x).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    checkpoint(model, x, use_reentrant=False).sum().backward()
    for p, g in zip(model.parameters(), expected):
        assert torch.equal(p.grad, g)


# ---- CUDA: cuSPARSELt against the CPU reference (skipped without a GPU) -------------------------

TOL = {torch.float16: dict(rtol=2e-3, atol=1e-2), torch.bfloat16: dict(rtol=1e-1, atol=1e-1)}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_compressed_operand_decompresses_to_the_masked_tensor(dtype):
    """Multiplying the 2:4 operand by the identity gives it back: the compressed form of W⊙M and of
    its transpose hold exactly the kept values (a product with one nonzero term is exact)."""
    w = torch.randn(256, 512, device="cuda", dtype=dtype)
    wp, _ = prune_2_4(w)
    eye_k = torch.eye(512, device="cuda", dtype=dtype)
    eye_n = torch.eye(256, device="cuda", dtype=dtype)
    assert torch.equal(ops.semi_sparse_mm(wp, eye_k), wp)
    assert torch.equal(ops.semi_sparse_mm(wp.t(), eye_n), wp.t())
    assert torch.equal(ops.semi_sparse_mm(wp, eye_k, None, True), wp.t())
    assert lowbit.core.last_kernel_path("semi_sparse_mm") == "cusparselt"  # 256 x 512: no padding


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("tokens", [256, 200])  # 200: padded to 256 inside the op
def test_cuda_semi_sparse_mm_matches_the_reference(dtype, tokens):
    g = torch.Generator().manual_seed(0)
    a = prune_2_4(torch.randn(384, 256, generator=g))[0].to(dtype)
    d = torch.randn(256, tokens, generator=g).to(dtype)
    bias = torch.randn(384, generator=g).to(dtype)
    want = (a.double() @ d.double() + bias.double()[:, None])
    got = ops.semi_sparse_mm(a.cuda(), d.cuda(), bias.cuda())
    assert lowbit.core.last_kernel_path("semi_sparse_mm") == ("cusparselt" if tokens % 128 == 0 else "cusparselt_padded")
    torch.testing.assert_close(got.cpu().double(), want, **TOL[dtype])
    got_t = ops.semi_sparse_mm(a.cuda(), d.t().contiguous().cuda().t(), bias.cuda(), True)
    torch.testing.assert_close(got_t.cpu().double(), want.t(), **TOL[dtype])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("activation", [False, True], ids=["weight", "activation"])
@pytest.mark.parametrize("gradient", ["ste", "masked"])
def test_cuda_semi_sparse_linear_matches_the_cpu_reference(dtype, activation, gradient):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 64, 256, generator=g).to(dtype)
    w = torch.randn(384, 256, generator=g) * 0.05
    b = torch.randn(384, generator=g)
    gy = torch.randn(4, 64, 384, generator=g).to(dtype)
    op = ops.semi_sparse_activation_linear if activation else ops.semi_sparse_linear
    results = []
    for device in ("cpu", "cuda"):
        xs = x.to(device).requires_grad_()
        ws, bs = w.to(device).requires_grad_(), b.to(device).requires_grad_()
        y = op(xs.float() if device == "cpu" else xs, ws, bs, "largest_abs", gradient)
        y.backward(gy.to(device).to(y.dtype))
        results.append([t.detach().cpu().double() for t in (y, xs.grad, ws.grad, bs.grad)])
    for name, ref, got in zip(("y", "grad_input", "grad_weight", "grad_bias"), *results):
        torch.testing.assert_close(got, ref, **TOL[dtype], msg=lambda m: f"{name}: {m}")


@pytest.mark.cuda
def test_cuda_shape_and_dtype_rules_are_clear_errors():
    x = torch.randn(64, 256, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="multiples of 128"):
        ops.semi_sparse_linear(x, torch.randn(100, 256, device="cuda"))
    with pytest.raises(RuntimeError, match="run in float16 or bfloat16"):
        ops.semi_sparse_linear(x.float(), torch.randn(128, 256, device="cuda"))
    model = nn.Sequential(nn.Linear(256, 128), nn.Linear(128, 100)).cuda()
    summary = convert_to_semi_sparse_training(model)  # default filter: only measured-faster shapes
    assert "has not been measured faster" in dict(summary.skipped)["0"]
    assert "multiples of 128" in dict(summary.skipped)["1"]


@pytest.mark.cuda
def test_cuda_compiled_training_step_matches_eager():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256)).cuda()
    swap_linear_with_semi_sparse_linear(model, {"0": SemiSparseLinear, "2": SemiSparseActivationLinear})
    x = torch.randn(384, 256, device="cuda", dtype=torch.bfloat16)  # float32 master weights, bf16 compute
    eager_x = x.clone().requires_grad_()
    model(eager_x).float().square().mean().backward()
    eager = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    comp_x = x.clone().requires_grad_()
    compiled(comp_x).float().square().mean().backward()
    torch.testing.assert_close(comp_x.grad, eager_x.grad, rtol=2e-2, atol=2e-2)
    for p, g in zip(model.parameters(), eager):
        torch.testing.assert_close(p.grad, g, rtol=2e-2, atol=2e-2)


@pytest.mark.cuda
def test_cuda_sparse_mlp_trains():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 128)).cuda()
    convert_to_semi_sparse_training(model, module_filter_fn=ALL)
    assert type(model[0]) is SemiSparseLinear and type(model[2]) is SemiSparseLinear
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randn(512, 256, device="cuda").bfloat16()
    target = torch.randn(512, 128, device="cuda")
    losses = []
    for _ in range(30):
        loss = (model(x).float() - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(l == l for l in losses) and losses[-1] < 0.8 * losses[0]
