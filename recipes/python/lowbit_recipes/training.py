"""Pieces of the training recipes shared by pretrain_llama and finetune_then_quantize: the
learning-rate schedule, optimizer choice, checkpoints (the same files as the C++ face writes),
validation loss and a one-line progress display. Mirrors recipes/pretrain.{h,cpp}."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import lowbit.optim

from .data import load_fortunes, split_fortunes, val_batches


def start_run(cfg: dict, config_text: str, quiet: bool):
    """Shared start of every recipe: creates ``train.output_dir``, saves (and unless quiet prints)
    the resolved config, and loads the fortunes split. Returns (device, output dir, train tokens,
    validation batches)."""
    t, d = cfg["train"], cfg["data"]
    out_dir = t["output_dir"]
    os.makedirs(out_dir, exist_ok=True)
    if config_text:
        with open(os.path.join(out_dir, "config.yaml"), "w") as f:
            f.write(config_text)
        if not quiet:
            print("# resolved config\n" + config_text, end="", flush=True)
    train_tokens, val_tokens = split_fortunes(load_fortunes(d["fortunes_dir"]), d["val_every"])
    val = val_batches(val_tokens, d["batch_size"], d["seq_len"], t["eval_batches"])
    return torch.device(t["device"]), out_dir, train_tokens, val


def lr_at(step: int, lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_optimizer(optim_cfg: dict, params) -> torch.optim.Optimizer:
    """``optim.name``: adamw (torch.optim.AdamW) | adamw8bit | adamw4bit | adamwfp8 (lowbit.optim)."""
    kwargs = dict(lr=optim_cfg["lr"], betas=tuple(optim_cfg["betas"]), eps=optim_cfg["eps"],
                  weight_decay=optim_cfg["weight_decay"])
    name = optim_cfg["name"]
    if name == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    if name == "adamw8bit":
        return lowbit.optim.AdamW8bit(params, **kwargs)
    if name == "adamw4bit":
        return lowbit.optim.AdamW4bit(params, **kwargs)
    if name == "adamwfp8":
        return lowbit.optim.AdamWFp8(params, **kwargs)
    raise ValueError(f"config key 'optim.name': unknown optimizer {name!r} (the schema allows {_optimizers()})")


def _optimizers() -> str:
    from . import schema_keys

    return next(k["allowed"] for k in schema_keys("pretrain") if k["key"] == "optim.name")


_LOW_BIT = (lowbit.optim.AdamW8bit, lowbit.optim.AdamW4bit, lowbit.optim.AdamWFp8)


def _named_weights(model: torch.nn.Module) -> dict:
    return {name: p.detach() for name, p in model.named_parameters()}


def save_checkpoint(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    """model.safetensors (metadata ``step``) plus optimizer.safetensors (lowbit optimizers, the
    cross-face format) or optimizer.pt (torch's AdamW); written beside and renamed into place."""
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    weights = {k: v.contiguous().cpu() for k, v in _named_weights(model).items()}
    save_file(weights, os.path.join(tmp, "model.safetensors"),
              metadata={"format": "lowbit.recipes.llama/1", "step": str(step)})
    if isinstance(optimizer, _LOW_BIT):
        lowbit.optim.save_state(optimizer, os.path.join(tmp, "optimizer.safetensors"))
    else:
        torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(tmp, folder)


def load_model_weights(path: str, model: torch.nn.Module) -> int:
    """Copies a checkpoint's parameters (C++ or Python written) into ``model``; names and shapes
    must match exactly. Returns the checkpoint's step."""
    tensors = load_file(path)
    params = _named_weights(model)
    missing = sorted(set(params) - set(tensors))
    extra = sorted(set(tensors) - set(params))
    if missing or extra:
        raise ValueError(f"checkpoint {path}: missing {missing[:5]}, unexpected {extra[:5]} (a different model config?)")
    with torch.no_grad():
        for name, p in params.items():
            if tensors[name].shape != p.shape:
                raise ValueError(f"checkpoint {path}: {name!r} has shape {tuple(tensors[name].shape)}, "
                                 f"the model expects {tuple(p.shape)}")
            p.copy_(tensors[name])
    with safe_open(path, "pt") as f:
        return int((f.metadata() or {}).get("step", "0"))


def load_checkpoint(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restores parameters and optimizer state; returns the step to continue from."""
    step = load_model_weights(os.path.join(folder, "model.safetensors"), model)
    if isinstance(optimizer, _LOW_BIT):
        lowbit.optim.load_state(optimizer, os.path.join(folder, "optimizer.safetensors"))
    else:
        path = os.path.join(folder, "optimizer.pt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"checkpoint {folder} has no optimizer.pt (saved with another optim.name?)")
        optimizer.load_state_dict(torch.load(path, weights_only=True))
    return step


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, device) -> float:
    """Mean cross-entropy over the validation batches (perplexity = exp of it)."""
    losses = [F.cross_entropy(model(x.to(device)).flatten(0, 1), y.to(device).flatten()) for x, y in batches]
    return torch.stack(losses).mean().item()


def process_memory() -> tuple[int, int]:
    """(resident, peak resident) bytes of this process, from /proc/self/status (0 if unknown)."""
    rss = peak = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, peak


def memory_text(device: torch.device) -> str:
    if device.type == "cuda":
        return (f"mem {torch.cuda.memory_allocated(device) >> 20} MiB "
                f"(peak {torch.cuda.max_memory_allocated(device) >> 20})")
    rss, peak = process_memory()
    return f"mem {rss >> 20} MiB (peak {peak >> 20})"


class Progress:
    """One line: step, loss, learning rate, tokens/s and memory; redrawn in place on a terminal."""

    def __init__(self, total_steps: int, device: torch.device, quiet: bool = False):
        self.total, self.device, self.quiet = total_steps, device, quiet
        self.tty = sys.stdout.isatty()
        self.tokens, self.since, self.open = 0, time.perf_counter(), False

    def add_tokens(self, n: int) -> None:
        self.tokens += n

    def update(self, step: int, loss: float, lr: float) -> float:
        """Redraws the line; returns the tokens/s since the last update."""
        now = time.perf_counter()
        tok_s = self.tokens / max(now - self.since, 1e-9)
        self.tokens, self.since = 0, now
        if not self.quiet:
            filled = int(20 * step / max(self.total, 1))
            line = (f"step {step}/{self.total} [{'=' * filled}{' ' * (20 - filled)}] loss {loss:.4f} | "
                    f"lr {lr:.2e} | {tok_s / 1000:.1f}k tok/s | {memory_text(self.device)}")
            if self.tty:
                print("\r\033[K" + line, end="", flush=True)
                self.open = True
            else:
                print(line, flush=True)
        return tok_s

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.open:
            print()
        self.open = False
        print(text, flush=True)

    def finish(self) -> None:
        if self.open and not self.quiet:
            print(flush=True)
        self.open = False
