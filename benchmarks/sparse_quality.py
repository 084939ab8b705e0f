"""The 2:4 quality experiment: a tiny Llama pretrained on fortunes with dense feed-forward weights,
with 2:4 FFN weights (sparse.enabled) and 2:4 then dense (sparse.dense_after_fraction), for each
sparse.gradient, over several seeds (train.seed: the initialization and the batches), through the
C++ recipe lowbit-train on the CPU. Prints each run's validation loss as mean ± std over the seeds,
its gap to dense (the per-seed differences, mean ± std) and the part of its gradient's 2:4 gap each
sparse-then-dense run closes (only where that gap is above seed noise: over two standard errors).

    python benchmarks/sparse_quality.py                    # the README's table: 5 seeds, 5-7 min on 2 cores
    python benchmarks/sparse_quality.py --gradient ste --dense-init master
    python benchmarks/sparse_quality.py --quick            # 20 steps, 2 seeds: the script works

The training runs in float32 on the CPU, where 2:4 is the exact reference (dense GEMMs with the
mask): this measures quality, not speed (bench_sparse.py measures speed). One training at a time,
OMP_NUM_THREADS=1 unless set (the numbers do not depend on it).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import lowbit_recipes


def val_loss(out_dir: str) -> float:
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line)["val_loss"] for line in f if '"val_loss"' in line][-1]


def mean_std(xs) -> str:
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.4f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seeds", default="1,2,3,4,5", help="train.seed values, comma-separated")
    p.add_argument("--fractions", default="0.5,0.7", help="sparse.dense_after_fraction values, comma-separated")
    p.add_argument("--gradient", default="masked,ste", help="sparse.gradient values (masked, ste), comma-separated")
    p.add_argument("--dense-init", default="pruned", choices=["pruned", "master"], help="sparse.dense_init")
    p.add_argument("--quick", action="store_true", help="20 steps, 2 seeds, one fraction")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.fractions, args.seeds = 20, "0.5", "1,2"
    seeds = [int(s) for s in args.seeds.split(",")]
    gradients = args.gradient.split(",")
    for g in gradients:
        if g not in ("masked", "ste"):
            p.error(f"--gradient: '{g}' is not one of masked, ste")
    base = [f"model.dim={args.dim}", f"model.n_layers={args.layers}", "model.n_heads=2", "model.n_kv_heads=1",
            f"model.hidden_dim={args.hidden}", "model.max_seq_len=64", "data.seq_len=64", "data.batch_size=8",
            f"train.steps={args.steps}", f"train.warmup_steps={max(1, args.steps // 12)}", "train.eval_batches=8",
            "train.eval_every=0", "train.checkpoint_every=0", "optim.lr=0.01", "optim.name=adamw",
            "float8.enabled=false", f"sparse.dense_init={args.dense_init}"]
    runs = [("dense", ["sparse.enabled=false"])]  # (name, overrides); the 2:4 rows of a gradient follow its "2:4 FFN"
    for g in gradients:
        sp = ["sparse.enabled=true", f"sparse.gradient={g}"]
        runs.append((f"2:4 FFN, {g}", sp))
        for f in args.fractions.split(","):
            runs.append((f"2:4 FFN, {g}, dense after {float(f):.0%}", [*sp, f"sparse.dense_after_fraction={f}"]))
    tool = lowbit_recipes.tool_path("lowbit-train")
    config = os.path.join(lowbit_recipes.config_dir(), "pretrain_tiny.yaml")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    losses = {name: [] for name, _ in runs}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for i, (name, extra) in enumerate(runs):
                out = os.path.join(tmp, f"{seed}_{i}")
                subprocess.run([tool, "--config", config, *base, *extra, f"train.seed={seed}", f"train.output_dir={out}"],
                               check=True, stdout=subprocess.DEVNULL, env=env)
                losses[name].append(val_loss(out))
                print(f"# seed {seed}, {name}: val loss {losses[name][-1]:.4f}", file=sys.stderr, flush=True)
    dense = losses["dense"]

    def gaps(name):
        return [a - b for a, b in zip(losses[name], dense)]

    print(f"Llama dim {args.dim}, {args.layers} layers, FFN hidden {args.hidden}, {args.steps} steps of 8 x 64 bytes of "
          f"fortunes, AdamW lr 0.01, sparse.dense_init={args.dense_init}, seeds {args.seeds}, float32 on the CPU "
          f"(lowbit-train), {time.perf_counter() - start:.0f} s\n")
    print("| run | val loss | gap to dense | part of the 2:4 gap closed |")
    print("|---|---|---|---|")
    for name, ls in losses.items():
        gap, closed = "", ""
        if name != "dense":
            g = gaps(name)
            gap = f"{statistics.mean(g):+.4f} ± {statistics.stdev(g) if len(g) > 1 else 0.0:.4f}"
            base = name.split(", dense after")[0]
            if base != name:
                b = gaps(base)
                noise = 2 * statistics.stdev(b) / len(b) ** 0.5 if len(b) > 1 else 0.0
                closed = (f"{1 - statistics.mean(g) / statistics.mean(b):.0%}" if statistics.mean(b) > noise
                          else "(2:4 gap within seed noise)")
        print(f"| {name} | {mean_std(ls)} | {gap} | {closed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
