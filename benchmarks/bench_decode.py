"""Where a decoded token's time goes in the main job's model (lowbit_recipes.llama.generate): one
decode step (the forward of one token with a KV cache) against its linears alone (the same M = 1
calls, back to back), per quantize_ format, and the forward with its linears stubbed out (the rest:
Python, norms, rotary, attention over the cache). Also each format's step against float32's.

    python benchmarks/bench_decode.py --device cpu --threads 2 --out results/decode.json

The model is the main job's shape (recipes/configs/model/mini.yaml) with random weights: speed does
not depend on the values. ``--quick`` is a small shape and few tokens (CI smoke run).
"""

import argparse
import copy
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from lowbit_recipes.llama import KVCache, Llama, LlamaConfig  # noqa: E402
from runner import Report, time_ms  # noqa: E402

FORMATS = ["none", "int8wo", "float8wo_e4m3", "fp6_e3m2", "uint4wo", "fp4_e2m1", "uint3wo", "uint2wo", "int4wo-32"]
MINI = dict(dim=384, hidden_dim=1152, n_layers=4, n_heads=6, n_kv_heads=2)  # model/mini.yaml
QUICK = dict(dim=128, hidden_dim=384, n_layers=2, n_heads=4, n_kv_heads=2)


def decode_step(model: Llama, device: str, prompt_len: int):
    """fn(i): the forward of one token at position prompt_len + i (the cache filled up to it)."""
    cache = KVCache(model.config, 1, device)
    model(torch.zeros(1, prompt_len, dtype=torch.long, device=device), cache, 0)
    token = torch.ones(1, 1, dtype=torch.long, device=device)
    limit = model.config.max_seq_len - prompt_len
    return lambda i: model(token, cache, prompt_len + i % limit)


def linears_alone(model: Llama, device: str):
    """fn(i): every linear of the model called once on one row, in forward order."""
    calls = [(m, torch.randn(1, 1, m.in_features, device=device)) for m in model.modules()
             if isinstance(m, torch.nn.Linear)]
    return lambda i: [m(x) for m, x in calls]


def thread_cpu_ms(fn, iters: int, warmup: int = 3) -> float:
    """Median milliseconds of ``fn(i)`` in this thread's CPU time: with one thread, the time the step
    computes, not the time other processes hold the core (a shared machine)."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(iters):
        t0 = time.thread_time()
        fn(i)
        times.append((time.thread_time() - t0) * 1e3)
    return statistics.median(times)


class _NoLinear(torch.nn.Module):
    """Stands in for a linear: returns a preallocated output of the right shape (no compute)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.out_features = linear.out_features
        self.one = torch.zeros(1, 1, linear.out_features, device=linear.weight.device)

    def forward(self, x):
        return self.one if x.shape[:-1] == (1, 1) else x.new_zeros(*x.shape[:-1], self.out_features)


def without_linears(model: Llama) -> Llama:
    """A copy of ``model`` whose linears cost nothing: its decode step is the rest of the forward."""
    model = copy.deepcopy(model)
    for fqn, mod in list(model.named_modules()):
        if isinstance(mod, torch.nn.Linear):
            parent, _, child = fqn.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, _NoLinear(mod))
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--formats", default=",".join(FORMATS), help="quantize_ shorthands; none = float32")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    p.add_argument("--iters", type=int, default=64, help="timed decode steps per row (median)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: this thread's CPU time (needs --threads 1; for a machine other processes share)")
    p.add_argument("--quick", action="store_true", help="small model, few steps (CI smoke run)")
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and (args.device != "cpu" or torch.get_num_threads() != 1):
        p.error("--clock cpu times one CPU thread: add --threads 1 (and --device cpu)")
    shape = QUICK if args.quick else MINI
    formats = ["none", "int8wo", "uint4wo"] if args.quick else args.formats.split(",")
    iters = 8 if args.quick else args.iters

    torch.manual_seed(0)
    model = Llama(LlamaConfig(**shape)).to(args.device).eval()
    clock = "thread CPU time" if args.clock == "cpu" else "wall time"
    report = Report(f"decode step vs its linears, Llama {shape} ({torch.get_num_threads()} threads, {clock})",
                    args.device)
    timer = ((lambda fn: thread_cpu_ms(fn, iters)) if args.clock == "cpu" else
             (lambda fn: time_ms(fn, args.device, warmup=3, iters=iters)))
    float_step = None
    with torch.inference_mode():
        rest_ms = timer(decode_step(without_linears(model), args.device, 32))
        print(f"# the forward without its linears (norms, rotary, attention over the cache, Python): "
              f"{rest_ms:.3f} ms per token", flush=True)
        for name in formats:
            m = copy.deepcopy(model)
            if name != "none":
                lowbit.quantize_(m, name)
            label = "float32" if name == "none" else name
            lin_ms = timer(linears_alone(m, args.device))
            step_ms = timer(decode_step(m, args.device, 32))
            report.add(f"{label}: step vs its linears", "linears alone", lin_ms, "decode step", step_ms)
            print(f"#   {label}: the step's time outside its linears {step_ms - lin_ms:.3f} ms "
                  f"({100 * (1 - lin_ms / step_ms):.0f}% of the step)", flush=True)
            if float_step is None:
                float_step = step_ms
            else:
                report.add(f"{label} vs float32 decode step", "float32 step", float_step, "decode step", step_ms)
            del m
    report.save(args.out)


if __name__ == "__main__":
    main()
