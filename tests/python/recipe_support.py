"""Shared by the recipe tests: pretrain_tiny shrunk to seconds (the same overrides as
tests/cpp/recipe_test_support.h, so both faces train the same model)."""


def tiny_overrides(out, *extra):
    """Overrides of pretrain_tiny.yaml: 2 layers of width 32, 4 x 32 tokens per step, 8 steps, writing
    to ``out``; ``extra`` comes last."""
    return ["model.dim=32", "model.n_layers=2", "model.n_heads=2", "model.n_kv_heads=1", "model.hidden_dim=64",
            "model.max_seq_len=32", "data.seq_len=32", "data.batch_size=4", "train.steps=8",
            "train.warmup_steps=2", "train.eval_batches=2", "train.eval_every=0", "train.checkpoint_every=0",
            "train.log_every=1", "optim.lr=0.01", f"train.output_dir={out}", *extra]
