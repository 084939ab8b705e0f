"""python -m lowbit_recipes.finetune_then_quantize: a few steps on a tiny checkpoint, the table
(markdown + JSON) and the loss-curve PNG; quantization changes size and perplexity as it should."""

import json
import os

import pytest

import lowbit

recipes = pytest.importorskip("lowbit_recipes")
from lowbit_recipes import data  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not recipes.available(), reason="lowbit built without recipes"),
    pytest.mark.skipif(not os.path.isdir(data.FORTUNES_DIR), reason="fortunes not installed"),
    pytest.mark.skipif(not hasattr(lowbit, "quantize_"), reason="lowbit.quantize_ not built in"),
]

SHRINK = ["model.dim=32", "model.n_layers=2", "model.n_heads=2", "model.n_kv_heads=1", "model.hidden_dim=64",
          "model.max_seq_len=32", "data.seq_len=32", "data.batch_size=4", "train.warmup_steps=1",
          "train.eval_batches=2", "train.eval_every=0", "train.log_every=1"]


def pretrain_then_finetune(tmp_path, out_name: str, *overrides: str):
    """Pretrains a tiny checkpoint for 3 steps, runs finetune_then_quantize for 2 with `overrides`;
    returns the output directory."""
    from lowbit_recipes.finetune_then_quantize import main
    from lowbit_recipes.pretrain_llama import pretrain

    pre_cfg = recipes.load_config(os.path.join(recipes.config_dir(), "pretrain_tiny.yaml"),
                                  SHRINK + ["train.steps=3", "optim.lr=0.01", f"train.output_dir={tmp_path / 'pre'}"])
    pretrain(pre_cfg, quiet=True)
    out = tmp_path / out_name
    assert main(["--config", os.path.join(recipes.config_dir(), "finetune_quantize_tiny.yaml"), *SHRINK,
                 "train.steps=2", f"train.output_dir={out}", f"finetune.checkpoint={tmp_path / 'pre' / 'checkpoint'}",
                 "quantize.generate_tokens=2", "quantize.prompt=Hi", *overrides]) == 0
    return out


def test_finetune_then_quantize_writes_the_table(tmp_path):
    out = pretrain_then_finetune(tmp_path, "ft", "quantize.configs=[none, int8wo]")
    result = json.loads((out / "results.json").read_text())
    base, int8 = result["rows"]
    assert base["technique"].startswith("float32") and int8["technique"] == "int8wo"
    # int8 weights: about a quarter of the float32 linears' bytes (embeddings and norms stay float32).
    assert int8["model_size_mib"] < 0.75 * base["model_size_mib"]
    assert abs(int8["perplexity"] / base["perplexity"] - 1) < 0.02
    assert base["baseline"] and base["perplexity_change_pct"] == 0 and base["weight_sqnr_db"] == float("inf")
    assert 30 < int8["weight_sqnr_db"] < 60  # int8 per channel: ~40 dB on trained weights
    assert int8["perplexity_change_pct"] == pytest.approx(100 * (int8["perplexity"] / base["perplexity"] - 1))
    # What a decoded token reads: int8 weights are a quarter of the float32 linears' bytes.
    assert int8["decode_bytes_per_token"] < 0.5 * base["decode_bytes_per_token"]
    for r in (base, int8):
        assert r["weight_gb_per_s"] == pytest.approx(r["decode_bytes_per_token"] * r["tokens_per_s"] / 1e9)
        assert r["memory_mib"] == pytest.approx(r["model_size_mib"] + r["run_peak_mib"]) and r["run_peak_mib"] >= 0
    table = (out / "results.md").read_text()
    assert "| technique | perplexity | vs float | weight SQNR (dB) | decode tokens/s | weight GB/s |" in table
    assert "pretrained 3 steps (perplexity " in table
    for png in ("loss_curves.png", "table.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_qat_mode_converts_and_autoquant_row(tmp_path):
    """finetune.mode=qat: a fake-quantized fine-tune, the qat.convert row (int8 x int4 weights), then the
    quantize_ rows from the QAT-trained float weights, and an autoquant row."""
    out = pretrain_then_finetune(tmp_path, "qat", "finetune.mode=qat", "finetune.qat_scheme=int8dq_int4",
                                 "quantize.configs=[none, int4dq, autoquant]")
    result = json.loads((out / "results.json").read_text())
    assert result["finetune_mode"] == "qat"
    converted, base, int4dq, auto = result["rows"]
    assert converted["technique"] == "qat int8dq_int4 (convert)"
    assert base["technique"].startswith("float32") and int4dq["technique"] == "int4dq"
    assert auto["technique"].startswith("autoquant (")
    # convert applies the same format quantize_ does, to the same weights: same size and perplexity.
    assert converted["model_size_mib"] == int4dq["model_size_mib"] < 0.5 * base["model_size_mib"]
    assert abs(converted["perplexity"] / int4dq["perplexity"] - 1) < 1e-3
    assert auto["model_size_mib"] <= base["model_size_mib"]


def test_qat_mode_without_lowbit_qat_is_a_clear_error(tmp_path):
    import importlib.util

    if importlib.util.find_spec("lowbit.qat") is not None:
        pytest.skip("lowbit.qat is built in")
    from lowbit_recipes.finetune_then_quantize import _qat_module

    with pytest.raises(RuntimeError, match="finetune.mode=plain"):
        _qat_module()
