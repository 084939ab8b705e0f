"""The recipes' data pipeline and the Python Llama; parity with the C++ Llama (same weights by
name -> same logits) through the lowbit-llama-forward tool built with the recipes."""

import os
import subprocess

import pytest
import torch
from safetensors.torch import load_file, save_file

recipes = pytest.importorskip("lowbit_recipes")
from lowbit_recipes import data  # noqa: E402
from lowbit_recipes.llama import Llama, LlamaConfig, apply_rope, rope_tables  # noqa: E402

HAS_FORTUNES = os.path.isdir(data.FORTUNES_DIR)
FORWARD_TOOL = os.path.join(recipes.bin_dir(), "lowbit-llama-forward")


def small_config(**kw):
    base = dict(vocab_size=256, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=96, max_seq_len=32,
                norm_eps=1e-5, rope_theta=10000.0)
    base.update(kw)
    return LlamaConfig(**base)


@pytest.mark.skipif(not HAS_FORTUNES, reason="fortunes not installed")
def test_fortunes_split_and_batches_match_the_cpp_face():
    fortunes = data.load_fortunes()
    if len(fortunes) != 15217:
        pytest.skip(f"a different fortunes release ({len(fortunes)} fortunes)")
    # The same numbers tests/cpp/test_llama.cpp asserts for the C++ face.
    train, val = data.split_fortunes(fortunes, 10)
    assert (train.numel(), val.numel()) == (2300304, 261155)
    assert (int(train.sum()), int(val.sum())) == (200710862, 22790998)
    x, y = data.train_batch(train, 4, 16, 1234, 7)
    assert int(x.sum()) == 5339
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x, data.train_batch(train, 4, 16, 1234, 7)[0])
    val_b = data.val_batches(val, 4, 16, 3)
    assert len(val_b) == 3 and torch.equal(val_b[1][0][0], val[64:80])


def test_byte_tokenizer_round_trips():
    text = "Hello, wörld!\n"
    tokens = data.encode_bytes(text)
    assert len(tokens) == len(text.encode()) and tokens[8] == 0xC3
    assert data.decode_bytes(tokens) == text


def test_causal_and_gqa_shapes():
    torch.manual_seed(0)
    c = small_config()
    model = Llama(c)
    assert model.layers[0].attention.wk.weight.shape == (2 * 16, 64)
    tokens = torch.randint(256, (2, 12))
    logits = model(tokens)
    assert logits.shape == (2, 12, 256)
    changed = tokens.clone()
    changed[0, 7] = (changed[0, 7] + 1) % 256
    logits2 = model(changed)
    torch.testing.assert_close(logits[:, :7], logits2[:, :7], rtol=0, atol=1e-5)
    assert (logits[0, 7] - logits2[0, 7]).abs().max() > 1e-3
    assert "rope_cos" not in model.state_dict()
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.randint(256, (1, 33)))


def test_rope_is_a_relative_rotation():
    cos, sin = rope_tables(20, 16, 10000.0)
    q, k = torch.randn(16), torch.randn(16)
    qs = apply_rope(q.expand(1, 20, 1, 16), cos, sin)[0, :, 0]
    ks = apply_rope(k.expand(1, 20, 1, 16), cos, sin)[0, :, 0]
    torch.testing.assert_close(qs.norm(dim=-1), q.norm().expand(20), rtol=1e-5, atol=1e-5)
    assert abs(float(qs[5] @ ks[2]) - float(qs[15] @ ks[12])) < 1e-4


@pytest.mark.skipif(not recipes.available(), reason="lowbit built without the recipes")
def test_config_checks():
    # The C++ LlamaConfig's rules, through lowbit_recipes._C: the same message as the config schema's.
    with pytest.raises(ValueError, match=r"model.n_heads \(4\) must be a multiple of model.n_kv_heads \(3\)"):
        small_config(n_kv_heads=3).validate()
    with pytest.raises(ValueError, match="unknown keys"):
        LlamaConfig.from_dict({**small_config().__dict__, "dimm": 3})


@pytest.mark.skipif(not os.path.exists(FORWARD_TOOL), reason="lowbit built without the recipes")
def test_parity_with_the_cpp_llama(tmp_path):
    """Python weights -> safetensors by name -> the C++ Llama: the same logits (float32)."""
    torch.manual_seed(1)
    c = small_config()
    model = Llama(c).eval()
    with torch.no_grad():  # RMSNorm weights away from 1 so a norm mix-up would show
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    tokens = torch.randint(256, (3, 24))
    save_file({"tokens": tokens}, str(tmp_path / "tokens.safetensors"))
    (tmp_path / "model.yaml").write_text("model:\n" + "".join(f"  {k}: {v}\n" for k, v in c.__dict__.items()))
    subprocess.run([FORWARD_TOOL, "--config", str(tmp_path / "model.yaml"), str(tmp_path / "w.safetensors"),
                    str(tmp_path / "tokens.safetensors"), str(tmp_path / "out.safetensors")], check=True)
    cpp_logits = load_file(str(tmp_path / "out.safetensors"))["logits"]
    with torch.no_grad():
        py_logits = model(tokens)
    assert cpp_logits.shape == py_logits.shape
    torch.testing.assert_close(cpp_logits, py_logits, rtol=1e-5, atol=1e-5)


def test_cached_decoding_matches_the_full_forward():
    """generate()'s KV cache: prefill + one token at a time gives the full forward's logits."""
    from lowbit_recipes.llama import KVCache, generate

    torch.manual_seed(2)
    model = Llama(small_config()).eval()
    tokens = torch.randint(256, (2, 20))
    with torch.no_grad():
        full = model(tokens)
        cache = KVCache(model.config, 2)
        parts = [model(tokens[:, :8], cache, 0), model(tokens[:, 8:13], cache, 8)]
        parts += [model(tokens[:, i : i + 1], cache, i) for i in range(13, 20)]
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-4, atol=1e-5)
    out, tok_s = generate(model, tokens[0, :5].tolist(), 6)
    assert len(out) == 11 and tok_s > 0
    with torch.no_grad():  # greedy: each new token is the argmax of the full forward over what came before
        for i in range(5, 11):
            assert out[i] == int(model(torch.tensor([out[:i]]))[0, -1].argmax())
