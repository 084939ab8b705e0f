"""lowbit.optim: AdamW8bit, AdamW4bit, AdamWFp8 against torch.optim.AdamW and a plain-PyTorch
statement of the formats (optim_reference.py); state size, save / load, errors, the C++ face.

Bounds and why:
* spec: after a step from the same state, quantized states (codes and scales) equal the
  reference exactly; fp32 parameters agree within 2 ulp of the update's operands (torch's
  vectorized kernels in the reference may fuse a multiply-add), bf16 parameters exactly.
* training: the low-bit runs end within LOSS_TOL of AdamW's loss (relative), set a few times
  above the gap measured on this machine (see the report in each test's docstring).
* state bytes per parameter on a 2048 x 2048 matrix: <= 2.1 (8-bit, fp8), <= 1.1 (4-bit).
* resume: save / load then continue equals an uninterrupted run bit for bit (torch.equal).
"""

import math
import os
import subprocess
import sys

import pytest
import torch

import lowbit
from lowbit.optim import AdamW4bit, AdamW8bit, AdamWFp8, load_state, save_state

sys.path.insert(0, os.path.dirname(__file__))
from optim_reference import dynamic_tree_map, reference_step  # noqa: E402
from text_data import SKIP_REASON, fortunes_bytes  # noqa: E402

OPTIMIZERS = {"8bit": AdamW8bit, "4bit": AdamW4bit, "fp8": AdamWFp8}
STATE_KEYS = ("step", "exp_avg", "exp_avg_scale", "exp_avg_sq", "exp_avg_sq_scale")
ops = torch.ops.lowbit


def init_state(p, fmt, block_size, min_quantized_size=4096):
    return dict(zip(STATE_KEYS, ops.adamw_lowbit_init_state(p, fmt, block_size, min_quantized_size)))


def as_bytes(t):
    """The raw bytes of a tensor (so fp8 and float states compare bit for bit, NaN included)."""
    return t.reshape(-1).view(torch.uint8)


def op_step(params, grads, states, fmt, block_size, hyper, sr=False):
    lr, (b1, b2), eps, wd = hyper
    lists = [[s[k] for s in states] for k in STATE_KEYS]
    step, m, ms, v, vs = lists
    ops.adamw_lowbit_step_(params, grads, m, ms, v, vs, step, lr, b1, b2, eps, wd, fmt, block_size, sr)


# ---- the formats ------------------------------------------------------------------------------


def test_dynamic_tree_maps_have_the_documented_structure():
    signed8, unsigned8, signed4 = dynamic_tree_map(8, True), dynamic_tree_map(8, False), dynamic_tree_map(4, True)
    assert len(signed8) == 256 and len(unsigned8) == 256 and len(signed4) == 16
    for m in (signed8, unsigned8, signed4):
        assert m.max() == 1.0 and (m == 0).sum() == 1 and bool((m[1:] > m[:-1]).all())
    assert unsigned8.min() == 0 and signed8.min() > -1 and signed4.min() > -1
    # the values bitsandbytes' create_dynamic_map(signed=True, 3, 4) gives
    expected4 = [-0.8875, -0.6625, -0.4375, -0.2125, -0.0775, -0.0325, -0.0055, 0.0,
                 0.0055, 0.0325, 0.0775, 0.2125, 0.4375, 0.6625, 0.8875, 1.0]  # fmt: skip
    torch.testing.assert_close(signed4, torch.tensor(expected4), rtol=0, atol=1e-7)


CASES = [  # (format, shape, block_size): partial last blocks, odd sizes, rank-1 and block-wise v
    ("8bit", (67, 201), 256),
    ("fp8", (67, 201), 256),
    ("4bit", (256, 300), 128),  # rank-1 second moment: 556 statistics <= 76800 / 128
    ("4bit", (67, 201), 128),  # thin: block-wise second moment
    ("4bit", (10001,), 128),  # a vector, odd length
    ("8bit", (5000,), 64),
]


@pytest.mark.parametrize("fmt,shape,block_size", CASES)
@pytest.mark.parametrize("dtype,sr", [(torch.float32, False), (torch.bfloat16, False), (torch.bfloat16, True)])
def test_step_matches_the_format_spec(fmt, shape, block_size, dtype, sr):
    torch.manual_seed(0)
    p = torch.randn(shape).to(dtype)
    state = init_state(p, fmt, block_size)
    hyper = (1e-2, (0.9, 0.99), 1e-8, 0.1)
    for i in range(3):  # later steps start from non-trivial quantized states
        g = (torch.randn(shape) * (1 + i)).to(dtype)
        before_p, before = p.clone(), {k: t.clone() for k, t in state.items()}
        op_step([p], [g], [state], fmt, block_size, hyper, sr)
        ref_p, ref = reference_step(fmt, block_size, before_p, g, before, hyper[0], hyper[1], hyper[2], hyper[3], 0, sr)
        for k in STATE_KEYS:
            assert state[k].dtype == ref[k].dtype and torch.equal(as_bytes(state[k]), as_bytes(ref[k])), k
        if dtype == torch.float32:
            # 2 ulp of the operands of p * (1 - lr wd) - step_size * m / denom (|update| <~ lr)
            assert ((p - ref_p).abs() <= 2.4e-7 * (before_p.abs() + hyper[0])).all()
        else:
            assert torch.equal(p, ref_p)


def test_rank1_layout_and_fallback():
    assert init_state(torch.zeros(256, 300), "4bit", 128)["exp_avg_sq_scale"].numel() == 256 + 300
    assert init_state(torch.zeros(67, 201), "4bit", 128)["exp_avg_sq_scale"].numel() == math.ceil(67 * 201 / 128)
    assert init_state(torch.zeros(10001), "4bit", 128)["exp_avg_sq_scale"].numel() == math.ceil(10001 / 128)


def test_small_parameters_keep_fp32_state_and_match_torch_adamw():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(40, 50))  # 2000 < 4096
    w_ref = torch.nn.Parameter(w.detach().clone())
    for cls in OPTIMIZERS.values():
        w.data.copy_(w_ref.data)
        opt, ref = cls([w], lr=1e-2, weight_decay=0.1), torch.optim.AdamW([w_ref], lr=1e-2, weight_decay=0.1, foreach=False)
        start = w_ref.detach().clone()
        for i in range(10):
            g = torch.randn_like(w)
            w.grad, w_ref.grad = g.clone(), g.clone()
            opt.step()
            ref.step()
        assert opt.state[w]["exp_avg"].dtype == torch.float32 and opt.state[w]["exp_avg"].shape == w.shape
        torch.testing.assert_close(w, w_ref, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(opt.state[w]["exp_avg_sq"], ref.state[w_ref]["exp_avg_sq"], rtol=1e-6, atol=0)
        w_ref.data.copy_(start)


@pytest.mark.parametrize("fmt,limit", [("8bit", 2.1), ("4bit", 1.1), ("fp8", 2.1)])
def test_state_bytes_per_parameter(fmt, limit):
    p = torch.nn.Parameter(torch.zeros(2048, 2048))
    p.grad = torch.randn_like(p)
    opt = OPTIMIZERS[fmt]([p])
    opt.step()
    state_bytes = sum(t.numel() * t.element_size() for t in opt.state[p].values())
    per_param = state_bytes / p.numel()
    print(f"{fmt}: {per_param:.4f} bytes of state per parameter")
    assert per_param <= limit
    expected = {"8bit": 2 + 8 / 256, "4bit": 1 + 4 / 128 + 4 * 4096 / 2048**2, "fp8": 2 + 8 / 256}[fmt]
    assert abs(per_param - expected) < 1e-5  # plus 4 bytes of step, negligible


# ---- training against torch.optim.AdamW -----------------------------------------------------------

LOSS_TOL = {"8bit": 0.02, "4bit": 0.05, "fp8": 0.02}  # relative to AdamW's final loss


@pytest.fixture
def single_thread():
    """The training tests run on one thread: their matrices are too small to gain from two, and on
    a shared 2-core machine OpenMP's spinning workers slow them down about tenfold."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # 32x256: quantized, block-wise; 256x256: quantized, rank-1 in 4-bit; 8x256: fp32 state
        self.net = torch.nn.Sequential(torch.nn.Linear(32, 256), torch.nn.GELU(), torch.nn.Linear(256, 256),
                                       torch.nn.GELU(), torch.nn.Linear(256, 8))  # fmt: skip

    def forward(self, x):
        return self.net(x)


def classification_data(n=2048):
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(8, 32, generator=g)  # noisy classes: the loss plateaus near 0.5
    y = torch.randint(0, 8, (n,), generator=g)
    x = centers[y] + torch.randn(n, 32, generator=g) * 3.0
    return x, y


def train_mlp(make_opt, steps=120):
    torch.manual_seed(0)
    model = MLP()
    opt = make_opt(model.parameters())
    x, y = classification_data()
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        i = torch.randint(0, len(x), (128,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(x), y).item()


@pytest.fixture(scope="module")
def adamw_mlp_loss():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_mlp(lambda p: torch.optim.AdamW(p, lr=2e-3))
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("fmt", list(OPTIMIZERS))
def test_mlp_classifier_reaches_adamw_loss(fmt, single_thread, adamw_mlp_loss):
    ref = adamw_mlp_loss
    ours = train_mlp(lambda p: OPTIMIZERS[fmt](p, lr=2e-3))
    print(f"MLP final loss: AdamW {ref:.4f}, {fmt} {ours:.4f}")
    assert abs(ours - ref) <= LOSS_TOL[fmt] * ref


class TinyLM(torch.nn.Module):
    """A byte-level causal transformer: 2 layers, d=64, 4 heads, context 32."""

    def __init__(self, d=64, layers=2, ctx=32):
        super().__init__()
        self.emb = torch.nn.Embedding(256, d)
        self.pos = torch.nn.Parameter(torch.randn(ctx, d) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, 256)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(ctx))

    def forward(self, x):
        h = self.emb(x) + self.pos[: x.shape[1]]
        h = self.blocks(h, mask=self.mask, is_causal=True)
        return self.head(self.norm(h))


def lm_batches(text, n, seed, batch=16, ctx=32):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        i = torch.randint(0, len(text) - ctx - 1, (batch,), generator=g)
        idx = i[:, None] + torch.arange(ctx + 1)
        chunk = text[idx]
        yield chunk[:, :-1], chunk[:, 1:]


def train_lm(make_opt, text, steps=150):
    split = len(text) * 9 // 10
    torch.manual_seed(0)
    model = TinyLM()
    opt = make_opt(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))  # warmup: schedulers work
    for x, y in lm_batches(text[:split], steps, seed=1):
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        losses = [torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                  for x, y in lm_batches(text[split:], 8, seed=2, batch=32)]  # fmt: skip
    return sum(losses) / len(losses)


@pytest.fixture(scope="module")
def fortunes():
    text = fortunes_bytes(1 << 19)
    if text is None:
        pytest.skip(SKIP_REASON)
    return text.long()


@pytest.fixture(scope="module")
def adamw_lm_loss(fortunes):
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_lm(lambda p: torch.optim.AdamW(p, lr=3e-3), fortunes)
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("fmt", list(OPTIMIZERS))
def test_tiny_transformer_lm_on_fortunes_reaches_adamw_loss(fmt, single_thread, fortunes, adamw_lm_loss):
    ours = train_lm(lambda p: OPTIMIZERS[fmt](p, lr=3e-3), fortunes)
    print(f"LM held-out loss: AdamW {adamw_lm_loss:.4f}, {fmt} {ours:.4f}")
    assert ours < math.log(256) * 0.7  # it learned something
    assert abs(ours - adamw_lm_loss) <= LOSS_TOL[fmt] * adamw_lm_loss


# ---- non-finite gradients: confined to their element, as in torch.optim.AdamW ------------------

BAD = {100: float("inf"), 600: float("-inf"), 1100: float("nan"), 1700: 1e30}  # (1 - beta2) * g * g overflows


def run_with_bad_gradients(make_opt, shape=(256, 512), steps=4, lr=1e-2):
    """A parameter whose first gradient has the BAD elements, then normal gradients; returns it."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(shape))
    opt = make_opt([p], lr)
    g = torch.Generator().manual_seed(5)
    for step in range(steps):
        grad = torch.randn(shape, generator=g)
        if step == 0:
            for i, x in BAD.items():
                grad.view(-1)[i % grad.numel()] = x
        p.grad = grad
        opt.step()
    return p.detach()


@pytest.mark.parametrize("fmt", list(OPTIMIZERS))
@pytest.mark.parametrize("shape", [(256, 512), (40, 50)], ids=["quantized", "fp32-state"])
def test_non_finite_gradients_stay_in_their_element(fmt, shape):
    """One inf, -inf, NaN and overflowing gradient element, then three normal steps: exactly the
    elements torch.optim.AdamW turns NaN are NaN, and every other element, the bad elements' block
    neighbours included, is within the same distance of torch's result as the clean blocks are
    (a quantized state takes scales from finite values only). Bounds: the clean elements' largest
    deviation from torch, measured in the same run (about 1e-3 here), times 1.5; and for the
    overflowing element (torch freezes it: v = inf; lowbit keeps v at the block's largest finite
    value) 4 steps of lr."""
    bad = {i % (shape[0] * shape[1]): x for i, x in BAD.items()}
    lr = 1e-2
    ours = run_with_bad_gradients(lambda ps, lr: OPTIMIZERS[fmt](ps, lr=lr), shape, lr=lr)
    ref = run_with_bad_gradients(lambda ps, lr: torch.optim.AdamW(ps, lr=lr, foreach=False), shape, lr=lr)
    assert torch.equal(ours.isnan(), ref.isnan())
    assert int(ref.isnan().sum()) == 3  # inf, -inf and NaN gradients; not the overflowing one
    finite = ~ref.isnan().view(-1)
    err = (ours - ref).abs().view(-1)
    overflow = [i for i, x in bad.items() if x == 1e30][0]
    clean = finite.clone()
    block = 256
    for i in bad:
        clean[(i // block) * block:(i // block + 1) * block] = False  # the bad elements' blocks
    assert torch.isfinite(ours.view(-1)[finite]).all()
    near = finite & ~clean
    near[overflow] = False
    print(f"{fmt} {shape}: clean max err {err[clean].max():.2e}, bad blocks' other elements max err "
          f"{err[near].max():.2e}, overflowing element err {err[overflow]:.2e}")
    assert err[near].max() <= 1.5 * err[clean].max() + 1e-6
    assert err[overflow] <= 4 * lr


# ---- save / load ---------------------------------------------------------------------------------


def make_params():
    """fp32 quantized, fp32 small, bf16 quantized (stochastic rounding), in two groups."""
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(128, 96)), torch.nn.Parameter(torch.randn(100)),
            torch.nn.Parameter(torch.randn(64, 80).bfloat16())]  # fmt: skip


def make_opt(cls, params):
    return cls([{"params": params[:2]}, {"params": params[2:], "lr": 5e-3, "bf16_stochastic_round": True}],
               lr=1e-2, weight_decay=0.05)  # fmt: skip


def grads_for(params, step):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=g).to(p.dtype) for p in params]


def run_steps(opt, params, steps):
    for s in steps:
        for p, g in zip(params, grads_for(params, s)):
            p.grad = g
        opt.step()


def assert_same(opt_a, params_a, opt_b, params_b):
    for pa, pb in zip(params_a, params_b):
        assert torch.equal(pa, pb)
        for k in STATE_KEYS:
            a, b = opt_a.state[pa][k], opt_b.state[pb][k]
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(as_bytes(a), as_bytes(b)), k


@pytest.mark.parametrize("fmt", list(OPTIMIZERS))
@pytest.mark.parametrize("via", ["state_dict", "save_state"])
def test_save_load_then_continue_equals_uninterrupted(fmt, via, tmp_path):
    cls = OPTIMIZERS[fmt]
    params = make_params()
    opt = make_opt(cls, params)
    run_steps(opt, params, range(6))

    params2 = make_params()
    opt2 = make_opt(cls, params2)
    run_steps(opt2, params2, range(3))
    path = str(tmp_path / "opt")
    if via == "state_dict":
        torch.save({"params": [p.detach() for p in params2], "opt": opt2.state_dict()}, path)
        ckpt = torch.load(path)
        params3 = make_params()
        opt3 = make_opt(cls, params3)
        opt3.param_groups[1]["lr"] = 123.0  # load restores hyperparameters
        opt3.load_state_dict(ckpt["opt"])
    else:
        save_state(opt2, path)
        saved_params = [p.detach().clone() for p in params2]
        params3 = make_params()
        opt3 = make_opt(cls, params3)
        opt3.param_groups[1]["lr"] = 123.0
        load_state(opt3, path)
        ckpt = {"params": saved_params}
    with torch.no_grad():
        for p, q in zip(params3, ckpt["params"]):
            p.copy_(q)
    assert opt3.param_groups[1]["lr"] == 5e-3
    run_steps(opt3, params3, range(3, 6))
    assert_same(opt, params, opt3, params3)


def test_load_state_rejects_mismatches(tmp_path):
    params = make_params()
    opt = make_opt(AdamW8bit, params)
    run_steps(opt, params, range(1))
    path = str(tmp_path / "s.safetensors")
    save_state(opt, path)
    with pytest.raises(ValueError, match="'8bit' state"):
        load_state(make_opt(AdamW4bit, make_params()), path)
    other = [torch.nn.Parameter(torch.randn(128, 97)), *make_params()[1:]]
    with pytest.raises(ValueError, match="state.0 in .* does not fit parameter 0"):
        load_state(make_opt(AdamW8bit, other), path)
    with pytest.raises(ValueError, match="parameter groups"):
        load_state(AdamW8bit(make_params()), path)


def test_state_file_reads_earlier_writers_numbers(tmp_path):
    """The format stays lowbit.optim/1: a file whose floats are Python reprs (as the Python writer of
    earlier versions wrote them) loads with the same hyperparameters and states."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    params = make_params()
    opt = make_opt(AdamW8bit, params)
    run_steps(opt, params, range(2))
    path, old = str(tmp_path / "new.safetensors"), str(tmp_path / "old.safetensors")
    save_state(opt, path)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    assert metadata["format"] == "lowbit.optim/1" and metadata["param_groups.1.lr"] == "0.0050000000000000001"
    for key in list(metadata):
        if key.rsplit(".", 1)[-1] in ("lr", "beta1", "beta2", "eps", "weight_decay"):
            metadata[key] = repr(float(metadata[key]))
    save_file(load_file(path), old, metadata=metadata)
    opt2 = make_opt(AdamW8bit, make_params())
    opt2.param_groups[0]["lr"] = 7.0
    load_state(opt2, old)
    assert opt2.param_groups[0]["lr"] == 1e-2 and opt2.param_groups[1]["betas"] == (0.9, 0.999)
    params2 = opt2.param_groups[0]["params"] + opt2.param_groups[1]["params"]
    for pa, pb in zip(params, params2):
        for k in STATE_KEYS:
            assert torch.equal(as_bytes(opt.state[pa][k]), as_bytes(opt2.state[pb][k])), k


def test_failed_load_changes_nothing(tmp_path):
    params = make_params()
    opt = make_opt(AdamW8bit, params)
    run_steps(opt, params, range(1))
    path = str(tmp_path / "s.safetensors")
    save_state(opt, path)
    other = [torch.nn.Parameter(torch.randn(128, 97)), *make_params()[1:]]
    target = make_opt(AdamW8bit, other)
    run_steps(target, other, range(1))
    before = {id(p): {k: t.clone() for k, t in target.state[p].items()} for p in other}
    lrs = [g["lr"] for g in target.param_groups]
    with pytest.raises(ValueError, match="does not fit parameter 0"):
        load_state(target, path)
    assert [g["lr"] for g in target.param_groups] == lrs
    for p in other:
        for k, t in target.state[p].items():
            assert torch.equal(as_bytes(t), as_bytes(before[id(p)][k]))
    with pytest.raises(ValueError, match="lowbit.optim/1|safetensors|load_state"):
        (tmp_path / "junk").write_bytes(b"not a safetensors file")
        load_state(target, str(tmp_path / "junk"))


def test_state_file_ops_check_their_manifest(tmp_path):
    path = str(tmp_path / "s.safetensors")
    manifest = {"optimizer": "AdamW8bit", "state_format": "8bit", "param_groups": [], "state": [0]}
    with pytest.raises(ValueError, match="need 5 tensors, got 0"):
        ops.optim_save_state(path, __import__("json").dumps(manifest), [])
    manifest["optimizer"] = "AdamW4bit"
    with pytest.raises(ValueError, match="does not go with state_format"):
        ops.optim_save_state(path, __import__("json").dumps(manifest), [])


def test_lr_schedule_and_per_group_options():
    params = make_params()
    opt = AdamW4bit([{"params": params[:1], "block_size": 256}, {"params": params[1:], "lr": 0.0, "weight_decay": 0.0}])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.0)  # lr 0 from step 2 on
    before = [p.detach().clone() for p in params]
    run_steps(opt, params, range(2))
    sched.step()
    sched.step()
    assert opt.state[params[0]]["exp_avg_scale"].numel() == math.ceil(params[0].numel() / 256)
    assert not torch.equal(params[0], before[0])
    for p, b in zip(params[1:], before[1:]):
        assert torch.equal(p, b)  # lr 0, weight decay 0
    after = [p.detach().clone() for p in params]
    run_steps(opt, params, range(2, 4))  # the scheduler set lr = 0 for every group
    for p, a in zip(params, after):
        assert torch.equal(p, a)


def test_step_bumps_the_parameters_autograd_version():
    p = torch.nn.Parameter(torch.randn(5000))
    y = (p * p).sum()  # saves p for backward
    p.grad = torch.randn_like(p)
    AdamW8bit([p]).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_bf16_stochastic_rounding_keeps_small_updates():
    def run(sr):
        p = torch.nn.Parameter(torch.ones(8192, dtype=torch.bfloat16))
        opt = AdamW8bit([p], lr=1e-3, weight_decay=0.0, bf16_stochastic_round=sr)
        for _ in range(50):
            p.grad = torch.ones_like(p)
            opt.step()
        return p.float()

    nearest, stochastic = run(False), run(True)
    # every update (1e-3) is below half a bf16 ulp at 1.0 (2^-8): round-to-nearest loses all
    assert torch.equal(nearest, torch.ones_like(nearest))
    mean_change = (1 - stochastic).mean().item()
    assert abs(mean_change - 50 * 1e-3) < 0.1 * 50 * 1e-3  # unbiased within 10 %


# ---- errors ----------------------------------------------------------------------------------


def test_sparse_and_complex_gradients_are_clear_errors():
    emb = torch.nn.Embedding(5000, 4, sparse=True)
    opt = AdamW8bit(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()
    z = torch.nn.Parameter(torch.randn(10, dtype=torch.complex64))
    z.grad = torch.randn_like(z)
    with pytest.raises(RuntimeError, match="complex"):
        AdamW4bit([z]).step()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="block_size"):
        AdamW8bit([torch.nn.Parameter(torch.randn(3))], block_size=100)
    with pytest.raises(ValueError, match="beta parameter"):
        AdamW8bit([torch.nn.Parameter(torch.randn(3))], betas=(1.0, 0.9))
    p = torch.nn.Parameter(torch.randn(8192).half())
    p.grad = torch.randn_like(p)
    with pytest.raises(RuntimeError, match="float32, torch.bfloat16"):
        AdamW8bit([p]).step()
    q = torch.randn(8192)
    s = init_state(q, "8bit", 256)
    with pytest.raises(RuntimeError, match="created with another format or block_size"):
        op_step([q], [q.clone()], [s], "8bit", 512, (1e-3, (0.9, 0.99), 1e-8, 0.0))
    with pytest.raises(RuntimeError, match="unknown state_format"):
        op_step([q], [q.clone()], [s], "2bit", 256, (1e-3, (0.9, 0.99), 1e-8, 0.0))


def test_opcheck():
    q = torch.randn(64, 80)
    state = init_state(q, "4bit", 128, 0)
    args = ([q], [torch.randn_like(q)], [state["exp_avg"]], [state["exp_avg_scale"]], [state["exp_avg_sq"]],
            [state["exp_avg_sq_scale"]], [state["step"]], 1e-3, 0.9, 0.99, 1e-8, 0.0, "4bit", 128, False)  # fmt: skip
    torch.library.opcheck(ops.adamw_lowbit_step_.default, args)
    torch.library.opcheck(ops.adamw_lowbit_init_state.default, (q, "8bit", 256, 4096))


# ---- CUDA against the CPU reference -----------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("fmt,shape,block_size", CASES + [("4bit", (1024, 1000), 128), ("fp8", (3000,), 4096)])
@pytest.mark.parametrize("dtype,sr", [(torch.float32, False), (torch.bfloat16, True)])
def test_cuda_step_equals_cpu_reference(fmt, shape, block_size, dtype, sr):
    """Bound: bit for bit (the kernels share every element operation, with products rounded on
    their own, so CUDA and CPU compute the same floats)."""
    if not lowbit.build_info()["cuda"]:
        pytest.skip("lowbit was built without CUDA kernels")
    torch.manual_seed(0)
    params = [torch.randn(shape).to(dtype), torch.randn(300).to(dtype)]  # quantized + fp32 state, one launch
    states = [init_state(p, fmt, block_size) for p in params]
    cuda_params = [p.cuda() for p in params]
    cuda_states = [{k: t.cuda() for k, t in s.items()} for s in states]
    hyper = (1e-2, (0.9, 0.99), 1e-8, 0.1)
    for i in range(4):
        grads = [(torch.randn(p.shape) * (1 + i)).to(dtype) for p in params]
        op_step(params, grads, states, fmt, block_size, hyper, sr)
        op_step(cuda_params, [g.cuda() for g in grads], cuda_states, fmt, block_size, hyper, sr)
    for p, cp, s, cs in zip(params, cuda_params, states, cuda_states):
        assert torch.equal(p, cp.cpu())
        for k in STATE_KEYS:
            assert torch.equal(as_bytes(s[k]), as_bytes(cs[k].cpu())), k


def same_up_to_nan_payload(a, b):
    """Bit for bit, except that NaN matches NaN (CUDA's NaN is canonical, the CPU's keeps payloads)."""
    if a.dtype == torch.float32:
        return torch.equal(a.isnan(), b.isnan()) and torch.equal(as_bytes(a[~a.isnan()]), as_bytes(b[~b.isnan()]))
    return torch.equal(as_bytes(a), as_bytes(b))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("fmt,shape,block_size", [("8bit", (256, 512), 256), ("fp8", (256, 512), 256),
                                                  ("4bit", (256, 512), 128), ("4bit", (67, 201), 128)])
def test_cuda_non_finite_gradients_equal_cpu_reference(fmt, shape, block_size):
    """inf, -inf, NaN and overflowing gradient elements: CUDA's parameters and states equal the CPU
    kernel's bit for bit but for NaN payloads (same NaN positions, same scales from finite values)."""
    if not lowbit.build_info()["cuda"]:
        pytest.skip("lowbit was built without CUDA kernels")
    torch.manual_seed(0)
    p = torch.randn(shape)
    state = init_state(p, fmt, block_size)
    cp, cstate = p.cuda(), {k: t.cuda() for k, t in state.items()}
    hyper = (1e-2, (0.9, 0.99), 1e-8, 0.1)
    for i in range(3):
        g = torch.randn(shape)
        if i == 0:
            for j, x in BAD.items():
                g.view(-1)[j % g.numel()] = x
        op_step([p], [g], [state], fmt, block_size, hyper)
        op_step([cp], [g.cuda()], [cstate], fmt, block_size, hyper)
    assert same_up_to_nan_payload(p, cp.cpu())
    for k in STATE_KEYS:
        assert same_up_to_nan_payload(state[k], cstate[k].cpu()), k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_optimizer_trains_and_loads_cpu_state(tmp_path):
    if not lowbit.build_info()["cuda"]:
        pytest.skip("lowbit was built without CUDA kernels")
    params = make_params()
    opt = make_opt(AdamW4bit, params)
    run_steps(opt, params, range(2))
    path = str(tmp_path / "s.safetensors")
    save_state(opt, path)
    cuda_params = [torch.nn.Parameter(p.detach().cuda()) for p in params]
    cuda_opt = make_opt(AdamW4bit, cuda_params)
    load_state(cuda_opt, path)
    assert all(t.is_cuda for s in cuda_opt.state.values() for t in s.values())
    run_steps(opt, params, range(2, 4))
    for p, g in zip(cuda_params, grads_for(params, 2)):
        p.grad = g.cuda()
    cuda_opt.step()
    for p, g in zip(cuda_params, grads_for(params, 3)):
        p.grad = g.cuda()
    cuda_opt.step()
    for p, cp in zip(params, cuda_params):
        assert torch.equal(p, cp.cpu())


# ---- the C++ face -------------------------------------------------------------------------------


def cpp_test_binary():
    """build/<dir>/tests/cpp/lowbit_tests beside the staged package, or $LOWBIT_TESTS_BINARY."""
    path = os.environ.get("LOWBIT_TESTS_BINARY")
    if not path:
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(lowbit.__file__))))
        path = os.path.join(build, "tests", "cpp", "lowbit_tests")
    return path if os.path.isfile(path) else None


def test_cross_face_state_round_trip(tmp_path):
    """Python writes a state; the C++ optimizer (a gtest run as a subprocess) loads it, takes the
    same steps and writes its state and parameters back; the two must equal bit for bit, and the
    Python face must load the C++ file. The gtest (OptimCrossFace.ContinuesPythonRun) mirrors
    make_params / make_opt / grads_for below."""
    binary = cpp_test_binary()
    if binary is None:
        pytest.skip("the C++ test binary lowbit_tests is not built beside this lowbit (set LOWBIT_TESTS_BINARY)")
    from safetensors.torch import load_file, save_file

    for fmt, cls in OPTIMIZERS.items():
        d = tmp_path / fmt
        d.mkdir()
        params = make_params()
        opt = make_opt(cls, params)
        run_steps(opt, params, range(3))
        save_state(opt, str(d / "python_state.safetensors"))
        inputs = {f"param.{i}": p.detach() for i, p in enumerate(params)}
        for s in range(3, 6):
            inputs.update({f"grad.{s}.{i}": g for i, g in enumerate(grads_for(params, s))})
        save_file(inputs, str(d / "inputs.safetensors"), metadata={"optimizer": cls.__name__})
        run = subprocess.run([binary, "--gtest_filter=OptimCrossFace.ContinuesPythonRun"],
                             env={**os.environ, "LOWBIT_CROSS_FACE_DIR": str(d)}, capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert "[  PASSED  ] 1 test" in run.stdout and "SKIPPED" not in run.stdout, run.stdout

        run_steps(opt, params, range(3, 6))
        cpp_params = load_file(str(d / "cpp_params.safetensors"))
        for i, p in enumerate(params):
            assert torch.equal(p.detach(), cpp_params[f"param.{i}"])
        params2 = [torch.nn.Parameter(t.clone()) for t in (cpp_params[f"param.{i}"] for i in range(len(params)))]
        opt2 = make_opt(cls, params2)
        load_state(opt2, str(d / "cpp_state.safetensors"))
        assert_same(opt, params, opt2, params2)
