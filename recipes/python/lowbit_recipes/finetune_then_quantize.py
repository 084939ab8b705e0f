"""Fine-tune a pretrained Llama (plain or QAT), then quantize it with each of a list of configs
and compare: validation perplexity, greedy-generation tokens/s, peak memory and model size.

    python -m lowbit_recipes.finetune_then_quantize --config finetune_quantize_tiny \\
        finetune.checkpoint=outputs/pretrain_tiny/checkpoint finetune.mode=plain
    python -m lowbit_recipes.finetune_then_quantize --help     # every config key

The checkpoint is a ``model.safetensors`` folder from ``lowbit-train`` or ``pretrain_llama`` (the
same format). Outputs under ``train.output_dir``: config.yaml, results.md and results.json (the
table: technique | perplexity | tokens/s | peak memory | model size), loss_curves.png (pretraining
loss when the checkpoint's metrics.jsonl is beside it, and the fine-tuning loss).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

import lowbit

from . import cli, validate
from .data import encode_bytes, train_batch
from .llama import Llama, LlamaConfig
from .plots import save_loss_curves
from .training import Progress, start_run, evaluate, load_model_weights, lr_at, make_optimizer, process_memory


def model_size_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters and persistent buffers, quantized weights at their packed size."""
    total = 0
    for t in list(model.parameters()) + [b for n, b in model.named_buffers() if "rope_" not in n]:
        nbytes = getattr(t, "nbytes_quantized", None)
        total += nbytes() if callable(nbytes) else t.numel() * t.element_size()
    return total


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # Linux: "5" resets the peak resident set size (VmHWM) of this process
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def _peak(device: torch.device) -> int:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else process_memory()[1]


@torch.no_grad()
def greedy_generate(model: torch.nn.Module, prompt: list[int], new_tokens: int, max_seq_len: int, device):
    """Greedy decoding (no KV cache: each step runs the whole window). Returns (tokens, tokens/s)."""
    tokens = torch.tensor([prompt], dtype=torch.int64, device=device)
    start = time.perf_counter()
    for _ in range(new_tokens):
        logits = model(tokens[:, -max_seq_len:])
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], 1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return tokens[0].tolist(), new_tokens / (time.perf_counter() - start)


def _qat_module():
    if importlib.util.find_spec("lowbit.qat") is None:
        raise RuntimeError("finetune.mode=qat needs lowbit.qat, which this build of lowbit does not have; "
                           "use finetune.mode=plain")
    return importlib.import_module("lowbit.qat")


def finetune(cfg: dict, model: Llama, train_tokens, device, quiet=False) -> list[tuple[int, float]]:
    """Fine-tunes in place for ``train.steps``; returns the (step, loss) curve. With
    ``finetune.mode=qat`` the linears are fake-quantized (lowbit.qat.prepare) and stay so: run()
    converts a copy, then puts plain linears back for the quantize_ comparison."""
    t, d, ft = cfg["train"], cfg["data"], cfg["finetune"]
    if ft["mode"] == "qat":
        qat = _qat_module()
        qat.prepare(model, _qat_config(qat, ft["qat_scheme"]))
    optimizer = make_optimizer(cfg["optim"], model.parameters())
    progress, curve = Progress(t["steps"], device, quiet), []
    model.train()
    for step in range(t["steps"]):
        lr = lr_at(step, cfg["optim"]["lr"], t["warmup_steps"], t["steps"], t["min_lr_ratio"])
        for g in optimizer.param_groups:
            g["lr"] = lr
        x, y = train_batch(train_tokens, d["batch_size"], d["seq_len"], t["seed"] + 1_000_000, step)
        loss = F.cross_entropy(model(x.to(device)).flatten(0, 1), y.to(device).flatten())
        optimizer.zero_grad()
        loss.backward()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        optimizer.step()
        progress.add_tokens(d["batch_size"] * d["seq_len"])
        if (step + 1) % t["log_every"] == 0 or step + 1 == t["steps"]:
            curve.append((step + 1, loss.item()))
            progress.update(step + 1, curve[-1][1], lr)
    progress.finish()
    model.eval()
    return curve


# finetune.qat_scheme -> the lowbit.qat config; its quantize_ twin is the matching shorthand.
QAT_SCHEMES = {"int8dq_int4": ("Int8DynActInt4WeightQATConfig", 32), "int4wo": ("Int4WeightOnlyQATConfig", 128)}


def _qat_config(qat, scheme: str):
    name, group_size = QAT_SCHEMES[scheme]
    return getattr(qat, name)(group_size=group_size)


def _drop_fake_quant(model: torch.nn.Module) -> None:
    """Puts plain nn.Linear modules (sharing the QAT-trained parameters) back in place of the
    fake-quantized ones, so every quantize_ config of the comparison starts from the same weights
    (qat.convert would instead apply the one matching config)."""
    for fqn, mod in list(model.named_modules()):
        if type(mod) is torch.nn.Linear or not isinstance(mod, torch.nn.Linear):
            continue
        with torch.device("meta"):
            plain = torch.nn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
        plain.weight, plain.bias = mod.weight, mod.bias
        parent, _, child = fqn.rpartition(".")
        setattr(model.get_submodule(parent), child, plain)


def measure(technique: str, model: torch.nn.Module, cfg: dict, val, device, quiet=False) -> dict:
    """One table row: validation perplexity, greedy tokens/s, peak memory and size of ``model``."""
    q = cfg["quantize"]
    model.eval()
    _reset_peak(device)
    val_loss = evaluate(model, val, device)
    _, tok_s = greedy_generate(model, encode_bytes(q["prompt"]), q["generate_tokens"], cfg["model"]["max_seq_len"],
                               device)
    row = {"technique": technique, "perplexity": math.exp(val_loss), "tokens_per_s": tok_s,
           "peak_memory_mib": _peak(device) / 2**20, "model_size_mib": model_size_bytes(model) / 2**20}
    if not quiet:
        print(f"{technique}: perplexity {row['perplexity']:.3f}, {row['tokens_per_s']:.1f} tok/s, "
              f"peak {row['peak_memory_mib']:.0f} MiB, size {row['model_size_mib']:.3f} MiB", flush=True)
    return row


def convert_qat(cfg: dict, model: Llama, val, device, quiet=False) -> dict:
    """The QAT row: lowbit.qat.convert on a copy of the fake-quantized model (the real quantized
    model of the scheme's matching quantize_ config)."""
    converted = _qat_module().convert(copy.deepcopy(model))
    return measure(f"qat {cfg['finetune']['qat_scheme']} (convert)", converted, cfg, val, device, quiet)


def compare_quantizations(cfg: dict, model: Llama, val, device, quiet=False) -> list[dict]:
    """One row per ``quantize.configs`` entry: a quantize_ shorthand, "none" (the fine-tuned float
    model) or "autoquant" (lowbit.autoquant on one validation batch, default candidates)."""
    rows = []
    for name in cfg["quantize"]["configs"]:
        candidate = copy.deepcopy(model)
        technique = name
        if name == "none":
            technique = f"{next(model.parameters()).dtype} (not quantized)".replace("torch.", "")
        elif name == "autoquant":
            plan = lowbit.autoquant(candidate, (val[0][0].to(device),), iters=3)
            chosen = sorted({c for c in plan.chosen.values()})
            technique = f"autoquant ({', '.join(chosen)})"
        else:
            lowbit.quantize_(candidate, name)
        rows.append(measure(technique, candidate, cfg, val, device, quiet))
        del candidate
    return rows


def markdown_table(rows: list[dict]) -> str:
    """technique | perplexity | tokens/s | peak memory | model size."""
    lines = ["| technique | perplexity | tokens/s | peak memory (MiB) | model size (MiB) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['technique']} | {r['perplexity']:.3f} | {r['tokens_per_s']:.1f} | "
                     f"{r['peak_memory_mib']:.0f} | {r['model_size_mib']:.3f} |")
    return "\n".join(lines) + "\n"


def _pretrain_curve(checkpoint: str) -> list[tuple[int, float]]:
    path = os.path.join(os.path.dirname(os.path.normpath(checkpoint)), "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def run(cfg: dict, config_text: str = "", quiet: bool = False) -> dict:
    """The whole recipe on a resolved config; returns {"rows": [...], "finetune_curve": [...]}."""
    validate("finetune_then_quantize", cfg)
    t, ft = cfg["train"], cfg["finetune"]
    device, out, train_tokens, val = start_run(cfg, config_text, quiet)

    model = Llama(LlamaConfig.from_dict(cfg["model"]))
    step = load_model_weights(os.path.join(ft["checkpoint"], "model.safetensors"), model)
    model.to(device)
    if not quiet:
        print(f"# loaded {ft['checkpoint']} (step {step}); pretrained perplexity "
              f"{math.exp(evaluate(model, val, device)):.3f}", flush=True)
    curve = finetune(cfg, model, train_tokens, device, quiet) if ft["mode"] != "none" else []
    rows = []
    if ft["mode"] == "qat" and curve:
        rows.append(convert_qat(cfg, model, val, device, quiet))
        _drop_fake_quant(model)  # the quantize_ rows start from the QAT-trained float weights
    rows += compare_quantizations(cfg, model, val, device, quiet)

    table = markdown_table(rows)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"finetune_mode": ft["mode"], "device": str(device), "rows": rows}, f, indent=2)
    series = {}
    pre = _pretrain_curve(ft["checkpoint"])
    if pre:
        series["pretrain"] = pre
    if curve:
        offset = pre[-1][0] if pre else 0
        series[f"finetune ({ft['mode']})"] = [(offset + s, l) for s, l in curve]
    if series:
        save_loss_curves(os.path.join(out, "loss_curves.png"), series, "training loss")
    if not quiet:
        print("\n" + table, end="")
    return {"rows": rows, "finetune_curve": curve}


def main(argv=None) -> int:
    """``python -m lowbit_recipes.finetune_then_quantize [--config PATH|NAME] [key.sub=value ...]``."""
    start = cli.start("finetune_then_quantize", "python -m lowbit_recipes.finetune_then_quantize", argv)
    if isinstance(start, int):
        return start
    run(start["config"], start["config_text"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
