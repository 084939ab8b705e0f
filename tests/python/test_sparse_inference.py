"""2:4 sparse inference: lowbit.sparsify_ / SemiSparseWeightConfig (the quantized format "sparse24").

Parity against the dense model with the 2:4 mask applied by hand, the stored parts (compress_2_4 of
the pruned weight, 9/16 of bf16's bytes), the shorthand, skip reasons, all-or-nothing errors, the
save_quantized / load_quantized round trip, the straight-through input gradient, opcheck,
torch.compile, and a GPU parity test (skipped without one)."""

import math

import pytest
import torch
import torch.nn.functional as F

import lowbit
from lowbit.sparse import SemiSparseWeightConfig, sparsify_


def mlp(dtype=torch.float32, k=64, h=128, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(k, h), torch.nn.GELU(), torch.nn.Linear(h, k)).to(dtype)


def masked_reference(model):
    """The dense model with each weight pruned per row (prune_2_4 "largest_abs_rows") by hand."""
    ref = mlp(next(model.parameters()).dtype)
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        for lin in (ref[0], ref[2]):
            pruned, mask = torch.ops.lowbit.prune_2_4(lin.weight, "largest_abs_rows")
            lin.weight.copy_(pruned)
    return ref


def test_config_and_shorthand():
    c = SemiSparseWeightConfig()
    assert c.kind == "SemiSparseWeightConfig" and c.name == "sparse24"
    assert c.part_names == ["values", "meta"] and c.linear_op == "semi_sparse_weight_linear"
    assert lowbit.inference.parse_quantize_config("sparse24") == c
    assert "sparse24" in lowbit.inference.quantize_shorthands()
    assert lowbit.inference.SemiSparseWeightConfig() == c  # one table, both namespaces
    assert lowbit.sparsify_ is sparsify_


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2), (torch.float16, 2e-3)])
def test_parity_with_the_mask_applied_by_hand(dtype, tol):
    model = mlp(dtype)
    ref = masked_reference(model)
    x = torch.randn(5, 3, 64).to(dtype)
    sparsify_(model, SemiSparseWeightConfig())
    assert model.lowbit_summary.converted == ["0 (sparse24)", "2 (sparse24)"]
    with torch.no_grad():
        y, y_ref = model(x), ref(x)
    assert y.dtype == dtype and y.shape == (5, 3, 64)
    torch.testing.assert_close(y, y_ref, atol=tol, rtol=tol)


def test_parts_are_the_compressed_pruned_weight():
    model = mlp(torch.bfloat16)
    w = model[0].weight.detach().clone()
    lowbit.sparsify_(model)
    q = model[0].weight
    values, meta = q.parts if hasattr(q, "parts") else (q.values, q.meta)
    pruned, mask = torch.ops.lowbit.prune_2_4(w, "largest_abs_rows")
    ev, em = torch.ops.lowbit.compress_2_4(pruned)
    assert torch.equal(values, ev) and torch.equal(meta, em)
    assert values.dtype == torch.bfloat16 and meta.dtype == torch.uint8
    assert values.shape == (128, 32) and meta.shape == (128, 8)
    # Kept: exactly 2 per group of 4, the 2 largest magnitudes; 9/16 of the bf16 bytes.
    assert int(mask.reshape(-1, 4).sum(1).max()) == 2 and int(mask.reshape(-1, 4).sum(1).min()) == 2
    nbytes = values.numel() * values.element_size() + meta.numel()
    assert nbytes * 16 == w.numel() * w.element_size() * 9
    torch.testing.assert_close(torch.ops.lowbit.decompress_2_4(values, meta), pruned, atol=0, rtol=0)


def test_quantize_shorthand_is_the_same_as_sparsify():
    a, b = mlp(), mlp()
    sparsify_(a)
    lowbit.quantize_(b, "sparse24")
    x = torch.randn(4, 64)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_skips_say_why_and_the_filter_selects():
    model = torch.nn.Sequential(torch.nn.Linear(60, 32), torch.nn.Linear(32, 16))
    with pytest.warns(UserWarning):
        sparsify_(model, SemiSparseWeightConfig())
    summary = model.lowbit_summary
    assert summary.converted == ["1 (sparse24)"]
    (name, reason), = summary.skipped
    assert name == "0" and "in_features 60 is not a multiple of 8" in reason
    assert type(model[0].weight) is torch.nn.Parameter  # left alone

    model = mlp()
    sparsify_(model, filter_fn=lambda mod, fqn: fqn == "2")
    assert model.lowbit_summary.converted == ["2 (sparse24)"]
    assert type(model[0].weight) is torch.nn.Parameter


def test_a_quantized_format_is_an_error_and_changes_nothing():
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="sparsity config"):
        sparsify_(model, "int8wo")
    with pytest.raises(ValueError, match="sparsity config"):
        sparsify_(model, lowbit.inference.Int8WeightOnlyConfig())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_save_load_round_trip(tmp_path):
    model = mlp(torch.bfloat16)
    sparsify_(model)
    path = tmp_path / "sparse.safetensors"
    lowbit.save_quantized(model, str(path))
    fresh = mlp(torch.bfloat16, seed=1)
    lowbit.load_quantized(fresh, str(path))
    x = torch.randn(4, 64).to(torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    a, b = model.state_dict(), fresh.state_dict()
    for name in ("0.weight", "2.weight"):
        for pa, pb in zip(a[name].parts, b[name].parts):
            assert torch.equal(pa, pb)


def test_straight_through_input_gradient():
    model = mlp()
    ref = masked_reference(model)
    sparsify_(model)
    x = torch.randn(6, 64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    model(x).square().sum().backward()
    ref(x_ref).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-4, rtol=1e-4)
    assert model[0].bias.grad is not None


def test_opcheck():
    w = torch.randn(32, 64)
    values, meta = torch.ops.lowbit.compress_2_4(torch.ops.lowbit.prune_2_4(w, "largest_abs_rows")[0])
    for args in [(torch.randn(3, 64), values, meta, torch.randn(32)), (torch.randn(2, 5, 64), values, meta, None)]:
        torch.library.opcheck(torch.ops.lowbit.semi_sparse_weight_linear.default, args)
    with pytest.raises(RuntimeError, match="do not fit"):
        torch.ops.lowbit.semi_sparse_weight_linear(torch.randn(3, 64), values, meta[:, :4])
    with pytest.raises(RuntimeError, match="in_features"):
        torch.ops.lowbit.semi_sparse_weight_linear(torch.randn(3, 32), values, meta)


def test_compile_fullgraph():
    model = mlp()
    sparsify_(model)
    x = torch.randn(4, 64)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_parity_bf16():
    # cuSPARSELt shapes: multiples of 128 need no padding; 64 rows of tokens are padded (exact).
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256))
    model = model.to(torch.bfloat16)
    ref = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256))
    ref = ref.to(torch.bfloat16)
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        for lin in (ref[0], ref[2]):
            lin.weight.copy_(torch.ops.lowbit.prune_2_4(lin.weight, "largest_abs_rows")[0])
    model, ref = model.cuda(), ref.cuda()
    sparsify_(model)
    x = torch.randn(64, 256, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=3e-2, rtol=3e-2)


def test_finetune_then_quantize_has_a_sparse24_row(tmp_path):
    """The recipe's table takes "sparse24" like any quantize_ shorthand (it is in the default
    quantize.configs): a 2:4 row with its weight SQNR and the compressed weights' smaller size."""
    import json
    import os

    recipes = pytest.importorskip("lowbit_recipes")
    from lowbit_recipes import data

    if not recipes.available() or not os.path.isdir(data.FORTUNES_DIR):
        pytest.skip("needs lowbit_recipes with its extension and fortunes")
    from lowbit_recipes.finetune_then_quantize import main
    from lowbit_recipes.pretrain_llama import pretrain

    assert "sparse24" in recipes.schema_keys("finetune_then_quantize")[
        [k["key"] for k in recipes.schema_keys("finetune_then_quantize")].index("quantize.configs")]["default"]
    shrink = ["model.dim=32", "model.n_layers=2", "model.n_heads=2", "model.n_kv_heads=1", "model.hidden_dim=64",
              "model.max_seq_len=32", "data.seq_len=32", "data.batch_size=4", "train.warmup_steps=1",
              "train.eval_batches=2", "train.eval_every=0", "train.log_every=1"]
    pretrain(recipes.load_config(os.path.join(recipes.config_dir(), "pretrain_tiny.yaml"),
                                 shrink + ["train.steps=3", "optim.lr=0.01", f"train.output_dir={tmp_path / 'pre'}"]),
             quiet=True)
    out = tmp_path / "ft"
    assert main(["--config", os.path.join(recipes.config_dir(), "finetune_quantize_tiny.yaml"), *shrink,
                 "train.steps=2", f"train.output_dir={out}", f"finetune.checkpoint={tmp_path / 'pre' / 'checkpoint'}",
                 "quantize.generate_tokens=2", "quantize.prompt=Hi", "quantize.configs=[none, sparse24]"]) == 0
    base, sparse = json.loads((out / "results.json").read_text())["rows"]
    assert sparse["technique"] == "sparse24"
    assert 3 < sparse["weight_sqnr_db"] < 20  # half of each group of 4 pruned: ~9 dB on Gaussian-like weights
    assert sparse["model_size_mib"] < base["model_size_mib"]
    assert math.isfinite(sparse["perplexity"])
