"""Fine-tune a pretrained Llama (plain or QAT), then quantize it with each of a list of configs
and compare them in a table: validation perplexity and its change against the float model, the
weights' SQNR, decode tokens/s with a KV cache (every linear at M = 1; the best of 3 runs), the
weight bandwidth that implies, and memory (model bytes + the decode run's own peak; see lowbit_recipes.measure).

    python -m lowbit_recipes.finetune_then_quantize --config finetune_quantize_tiny \\
        finetune.checkpoint=outputs/pretrain_tiny/checkpoint finetune.mode=plain
    python -m lowbit_recipes.finetune_then_quantize --help     # every config key

The checkpoint is a ``model.safetensors`` folder from ``lowbit-train`` or ``pretrain_llama`` (the
same format). Outputs under ``train.output_dir``: config.yaml, results.md and results.json (the
table), table.png (perplexity and tokens/s per format), loss_curves.png (pretraining loss and
validation points when the checkpoint's metrics.jsonl is beside it, and the fine-tuning loss).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

import lowbit

from . import cli, validate
from .data import encode_bytes, train_batch
from .llama import Llama, LlamaConfig, generate
from .measure import PeakMemory, decode_bytes_per_token, float_weights, markdown_table, model_bytes, weight_sqnr_db
from .plots import save_loss_curves, save_table_chart
from .training import Progress, start_run, evaluate, load_model_weights, lr_at, make_optimizer


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


DECODE_RUNS = 3  # decode runs per row; tokens/s is the best of them


def measure(technique: str, model: torch.nn.Module, cfg: dict, val, device, reference: dict,
            quiet: bool = False) -> dict:
    """One table row for ``model``: validation perplexity, weight SQNR against ``reference`` (the
    float weights), decode tokens/s, the weight bandwidth it implies, model bytes and the decode
    run's own peak memory."""
    q = cfg["quantize"]
    model.eval()
    perplexity = math.exp(evaluate(model, val, device))
    with PeakMemory(device) as peak:
        # The best of a few runs: the first also warms up, and the best is the one least slowed by
        # other processes on a shared machine.
        tok_s = max(generate(model, encode_bytes(q["prompt"]), q["generate_tokens"], device)[1]
                    for _ in range(DECODE_RUNS))
    size = model_bytes(model)
    row = {"technique": technique, "perplexity": perplexity, "weight_sqnr_db": weight_sqnr_db(reference, model),
           "tokens_per_s": tok_s, "decode_bytes_per_token": decode_bytes_per_token(model),
           "model_size_mib": size / 2**20, "run_peak_mib": peak.bytes / 2**20,
           "memory_mib": (size + peak.bytes) / 2**20}
    row["weight_gb_per_s"] = row["decode_bytes_per_token"] * tok_s / 1e9
    if not quiet:
        print(f"{technique}: perplexity {perplexity:.3f}, weight SQNR {row['weight_sqnr_db']:.1f} dB, "
              f"{tok_s:.1f} tok/s ({row['weight_gb_per_s']:.3g} GB/s of weights), memory {row['memory_mib']:.2f} MiB "
              f"(model {row['model_size_mib']:.2f} + run peak {row['run_peak_mib']:.2f})", flush=True)
    return row


def convert_qat(cfg: dict, model: Llama, val, device, quiet=False) -> dict:
    """The QAT row: lowbit.qat.convert on a copy of the fake-quantized model (the real quantized
    model of the scheme's matching quantize_ config)."""
    reference = float_weights(model)
    converted = _qat_module().convert(copy.deepcopy(model))
    return measure(f"qat {cfg['finetune']['qat_scheme']} (convert)", converted, cfg, val, device, reference, quiet)


def compare_quantizations(cfg: dict, model: Llama, val, device, quiet=False) -> list[dict]:
    """One row per ``quantize.configs`` entry: a quantize_ shorthand, "none" (the fine-tuned float
    model) or "autoquant" (lowbit.autoquant's default candidates, each layer timed at the decode
    shape, one token: M = 1)."""
    rows, reference = [], float_weights(model)
    for name in cfg["quantize"]["configs"]:
        candidate = copy.deepcopy(model)
        technique = name
        if name == "none":
            technique = f"{next(model.parameters()).dtype} (not quantized)".replace("torch.", "")
        elif name == "autoquant":
            # Timed on one token (every linear at M = 1): the decode shape the tokens/s column measures.
            plan = lowbit.autoquant(candidate, (val[0][0][:1, :1].to(device),), iters=3)
            chosen = sorted({c for c in plan.chosen.values()})
            technique = f"autoquant ({', '.join(chosen)})"
        else:
            lowbit.quantize_(candidate, name)
        rows.append(measure(technique, candidate, cfg, val, device, reference, quiet))
        rows[-1]["baseline"] = name == "none"
        del candidate
    return rows


def _pretrain_metrics(checkpoint: str) -> tuple[list, list]:
    """(training loss, validation loss) curves of the run that wrote ``checkpoint``, from the
    metrics.jsonl beside it (empty when there is none)."""
    path = os.path.join(os.path.dirname(os.path.normpath(checkpoint)), "metrics.jsonl")
    if not os.path.exists(path):
        return [], []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return ([(r["step"], r["loss"]) for r in records if "loss" in r],
            [(r["step"], r["val_loss"]) for r in records if "val_loss" in r])


def _relative_to_float(rows: list[dict]) -> None:
    base = next((r for r in rows if r.get("baseline")), None)
    for r in rows:
        r["perplexity_change_pct"] = 100 * (r["perplexity"] / base["perplexity"] - 1) if base else float("nan")


def run(cfg: dict, config_text: str = "", quiet: bool = False) -> dict:
    """The whole recipe on a resolved config; returns {"rows": [...], "finetune_curve": [...]}."""
    validate("finetune_then_quantize", cfg)
    t, ft, m = cfg["train"], cfg["finetune"], cfg["model"]
    device, out, train_tokens, val = start_run(cfg, config_text, quiet)

    model = Llama(LlamaConfig.from_dict(m))
    step = load_model_weights(os.path.join(ft["checkpoint"], "model.safetensors"), model)
    model.to(device)
    pretrained_ppl = math.exp(evaluate(model, val, device))
    if not quiet:
        print(f"# loaded {ft['checkpoint']} (step {step}); pretrained perplexity {pretrained_ppl:.3f}", flush=True)
    curve = finetune(cfg, model, train_tokens, device, quiet) if ft["mode"] != "none" else []
    rows = []
    if ft["mode"] == "qat":
        rows.append(convert_qat(cfg, model, val, device, quiet))
        _drop_fake_quant(model)  # the quantize_ rows start from the QAT-trained float weights
    rows += compare_quantizations(cfg, model, val, device, quiet)
    _relative_to_float(rows)

    params = sum(p.numel() for p in model.parameters())
    setup = (f"Llama {params / 1e6:.2f}M parameters ({m['n_layers']} layers, dim {m['dim']}, hidden {m['hidden_dim']}); "
             f"pretrained {step} steps (perplexity {pretrained_ppl:.3f}); fine-tune {ft['mode']}"
             f"{' ' + ft['qat_scheme'] if ft['mode'] == 'qat' else ''}, {t['steps'] if curve else 0} steps of "
             f"{cfg['data']['batch_size']} x {cfg['data']['seq_len']} bytes, {cfg['optim']['name']} lr "
             f"{cfg['optim']['lr']}; decode: {cfg['quantize']['generate_tokens']} tokens with a KV cache, best of {DECODE_RUNS} runs; "
             f"device {device}, {torch.get_num_threads()} threads")
    table = markdown_table(rows)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(f"{setup}\n\n{table}")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"finetune_mode": ft["mode"], "device": str(device), "parameters": params,
                   "pretrained_step": step, "pretrained_perplexity": pretrained_ppl, "setup": setup,
                   "rows": rows}, f, indent=2)
    outputs = ["config.yaml", "results.md", "results.json"]
    save_table_chart(os.path.join(out, "table.png"), rows, "quantize_ formats: quality and decode speed", setup)
    outputs.append("table.png")
    pre, pre_val = _pretrain_metrics(ft["checkpoint"])
    series = {"pretrain (training loss)": pre} if pre else {}
    if curve:
        offset = pre[-1][0] if pre else 0
        series[f"fine-tune {ft['mode']} (training loss)"] = [(offset + s, l) for s, l in curve]
    if series:
        save_loss_curves(os.path.join(out, "loss_curves.png"), series, "training loss: pretrain, then fine-tune",
                         setup, marks={"pretrain (validation)": pre_val} if pre_val else None)
        outputs.append("loss_curves.png")
    if not quiet:
        print(f"\n{setup}\n\n{table}\noutputs in {out}: {', '.join(outputs)}")
    return {"rows": rows, "finetune_curve": curve, "outputs": [os.path.join(out, o) for o in outputs]}


def main(argv=None) -> int:
    """``python -m lowbit_recipes.finetune_then_quantize [--config PATH|NAME] [key.sub=value ...]``."""
    start = cli.start("finetune_then_quantize", "python -m lowbit_recipes.finetune_then_quantize", argv)
    if isinstance(start, int):
        return start
    run(start["config"], start["config_text"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
