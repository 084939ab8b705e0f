"""Pretrain a Llama on fortunes: the Python face of ``lowbit-train`` (recipes/pretrain.h).

    python -m lowbit_recipes.pretrain_llama --config pretrain_tiny train.steps=50
    python -m lowbit_recipes.pretrain_llama --help      # every config key: type, default, allowed values
    torchrun --standalone --nproc_per_node=2 -m lowbit_recipes.pretrain_llama --config pretrain_tiny distributed.enabled=true

float8 training (``float8.*``) or 2:4 sparse feed-forward weights with an optional switch to dense
(``sparse.*``), AdamW / AdamW8bit / AdamW4bit / AdamWFp8 (``optim.name``), gradient
clipping, warm-up + cosine, checkpoints with exact resume (``train.resume=true``), validation
perplexity, a progress line, ``torch.compile`` when ``train.compile=true``, and under torchrun
(``distributed.enabled=true``) FSDP2 per transformer block with float8 all-gather
(``distributed.*``, see lowbit_recipes.distributed). Outputs under
``train.output_dir``: config.yaml, metrics.jsonl, checkpoint/ (the same files as the C++ face).
"""

from __future__ import annotations

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

import lowbit.float8
import lowbit.sparse

from . import cli, validate
from .data import train_batch
from .distributed import DistributedRun
from .llama import Llama, LlamaConfig
from .training import Progress, start_run, evaluate, load_checkpoint, lr_at, make_optimizer, save_checkpoint


def build_model(cfg: dict, device: torch.device, run: DistributedRun | None = None) -> Llama:
    """The config's Llama (seeded by ``train.seed``) on ``device``, converted to float8 training
    when ``float8.enabled`` (weights all-gathered in fp8 when ``distributed.float8_all_gather``)."""
    torch.manual_seed(cfg["train"]["seed"])
    model = Llama(LlamaConfig.from_dict(cfg["model"])).to(device)
    f8 = cfg["float8"]
    if f8["enabled"]:
        config = lowbit.float8.Float8LinearConfig.from_recipe_name(f8["recipe"])
        config.emulate = f8["emulate"]
        if run is not None:
            config = run.float8_config(config)
        lowbit.float8.convert_to_float8_training(model, config=config)
    return model


def pretrain(cfg: dict, config_text: str = "", quiet: bool = False) -> dict:
    """Runs the recipe on a config of ``load_config(..., recipe="pretrain")``. Returns ``losses``
    (each step this run executed), ``first_step``, ``val_loss``, ``checkpoint_dir`` and ``model``."""
    validate("pretrain", cfg)  # the C++ schema; a no-op for a loaded config, a clear error for an edited one
    run = DistributedRun(cfg)  # rank 0 of 1 unless distributed.enabled (torchrun)
    try:
        return _pretrain(cfg, config_text, quiet or not run.is_main, run)
    finally:
        run.finish()


def _pretrain(cfg: dict, config_text: str, quiet: bool, run: DistributedRun) -> dict:
    t, d = cfg["train"], cfg["data"]
    device, out_dir, train_tokens, val = start_run(cfg, config_text if run.is_main else "", quiet)
    device = run.device(t["device"])
    model = build_model(cfg, device, run)
    sharded = run.shard(model, device)  # FSDP2 per block (or DDP); the optimizer must see the shards
    forward = torch.compile(sharded) if t["compile"] else sharded
    optimizer = make_optimizer(cfg["optim"], model.parameters())
    if not quiet and run.enabled:
        print(f"# distributed: {run.world_size} ranks, {'FSDP2 per block' if run.shard_params else 'DDP'}"
              f"{', float8 all-gather' if run.float8_all_gather else ''}")

    ckpt_dir = os.path.join(out_dir, "checkpoint")
    step = 0
    if t["resume"] and os.path.exists(os.path.join(ckpt_dir, "model.safetensors")):
        if run.enabled and run.shard_params:
            if not run.is_sharded_checkpoint(ckpt_dir):
                raise RuntimeError(f"train.resume: checkpoint {ckpt_dir} comes from a single-process run; a sharded run "
                                   "resumes from a sharded checkpoint of the same world size")
            step = run.load_checkpoint(ckpt_dir, model, optimizer)
        else:
            if run.is_sharded_checkpoint(ckpt_dir):
                raise RuntimeError(f"train.resume: checkpoint {ckpt_dir} comes from a sharded run; resume it under "
                                   "torchrun with distributed.enabled=true and the same number of ranks")
            step = load_checkpoint(ckpt_dir, model, optimizer)
        if not quiet:
            print(f"# resumed from {ckpt_dir} at step {step}")
    first_step = step
    steps = t["steps"]
    # 2:4 sparse feed-forward weights until `dense_at`, then dense from the weights sparse.dense_init
    # names (pruned: W*M, the same function across the switch; master: W as it is). The
    # checkpoint holds the dense master weights, so a resumed run converts up to the switch itself
    # (resuming at step dense_at still prunes there, as the uninterrupted run does).
    sp = cfg["sparse"]
    dense_at = lowbit.sparse.dense_after_step(steps, sp["dense_after_fraction"]) if sp["enabled"] else 0
    if sp["enabled"] and step <= dense_at:
        summary = lowbit.sparse.convert_to_semi_sparse_training(
            model, config=lowbit.sparse.SemiSparseTrainingConfig(gradient=sp["gradient"]),
            module_filter_fn=lambda mod, fqn: ".feed_forward." in fqn)
        if not summary.converted:
            raise RuntimeError(f"sparse.enabled: no feed-forward linear could be made 2:4:\n{summary}")
        if not quiet:
            print(f"# sparse: {len(summary.converted)} feed-forward linears train 2:4")
    last = min(t["stop_at"], steps) if t["stop_at"] > 0 else steps
    progress = Progress(steps, device, quiet)
    losses, val_loss = [], float("nan")
    model.train()
    metrics = open(os.path.join(out_dir, "metrics.jsonl"), "a" if step > 0 else "w") if run.is_main else None
    try:
        for step in range(step, last):
            if sp["enabled"] and step == dense_at < steps:
                pruned = sp["dense_init"] == "pruned"
                lowbit.sparse.swap_semi_sparse_linear_with_linear(model, prune_weights=pruned)
                progress.message(f"step {step}: the feed-forward linears train dense from here, starting from "
                                 f"their {'pruned' if pruned else 'dense master'} weights")
            lr = lr_at(step, cfg["optim"]["lr"], t["warmup_steps"], steps, t["min_lr_ratio"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            # Rank r takes batch step * world_size + r of the stream: with one rank, the single-process run.
            x, y = train_batch(train_tokens, d["batch_size"], d["seq_len"], t["seed"], run.batch_index(step))
            loss = F.cross_entropy(forward(x.to(device)).flatten(0, 1), y.to(device).flatten())
            optimizer.zero_grad()
            loss.backward()
            if t["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
            optimizer.step()
            run.after_optimizer_step(model)
            losses.append(loss.detach())
            progress.add_tokens(d["batch_size"] * d["seq_len"] * run.world_size)
            if (step + 1) % t["log_every"] == 0 or step + 1 == last:
                value = run.mean(loss.item())  # the mean over the ranks' batches
                tok_s = progress.update(step + 1, value, lr)
                if metrics:
                    metrics.write(json.dumps({"step": step + 1, "loss": value, "lr": lr, "tokens_per_s": tok_s}) + "\n")
            if (t["eval_every"] > 0 and (step + 1) % t["eval_every"] == 0) or step + 1 == last:
                model.eval()
                val_loss = evaluate(forward, val, device)  # every rank, the same batches
                model.train()
                progress.message(f"step {step + 1}: val loss {val_loss:.4f}, perplexity {math.exp(val_loss):.3f}")
                if metrics:
                    metrics.write(json.dumps({"step": step + 1, "val_loss": val_loss,
                                              "val_perplexity": math.exp(val_loss)}) + "\n")
            if (t["checkpoint_every"] > 0 and (step + 1) % t["checkpoint_every"] == 0) or step + 1 == last:
                if run.enabled and run.shard_params:
                    run.save_checkpoint(ckpt_dir, model, optimizer, step + 1)
                elif run.is_main:
                    save_checkpoint(ckpt_dir, model, optimizer, step + 1)
                run.barrier()
            if metrics:
                metrics.flush()
    finally:
        if metrics:
            metrics.close()
    progress.finish()
    return {"losses": [l.item() for l in losses], "first_step": first_step, "val_loss": val_loss,
            "checkpoint_dir": ckpt_dir, "model": model, "rank": run.rank}


def main(argv=None) -> int:
    """``python -m lowbit_recipes.pretrain_llama [--config PATH|NAME] [key.sub=value ...]``; returns the exit status."""
    start = cli.start("pretrain", "python -m lowbit_recipes.pretrain_llama", argv)
    if isinstance(start, int):
        return start
    result = pretrain(start["config"], start["config_text"])
    if result["rank"] != 0:  # rank 0 reports for the run
        return 0
    out = start["config"]["train"]["output_dir"]
    print(f"done: {len(result['losses'])} steps from step {result['first_step']}, final val loss "
          f"{result['val_loss']:.4f} (perplexity {math.exp(result['val_loss']):.3f})\n"
          f"outputs: {out}/{{config.yaml, metrics.jsonl}}, checkpoint {result['checkpoint_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
