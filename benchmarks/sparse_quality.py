"""The 2:4 quality experiment: a tiny Llama pretrained on fortunes with dense feed-forward weights,
with 2:4 FFN weights (sparse.enabled) and 2:4 then dense (sparse.dense_after_fraction), each from
the same seed and data, through the C++ recipe lowbit-train on the CPU. Prints the validation loss
of each run, its gap to dense, and the part of the 2:4 gap each sparse-then-dense run closes.

    python benchmarks/sparse_quality.py                    # 120 steps, dim 32 (README's table), minutes
    python benchmarks/sparse_quality.py --steps 300 --dim 64 --hidden 256
    python benchmarks/sparse_quality.py --quick            # 20 steps: the script works

The training runs in float32 on the CPU, where 2:4 is the exact reference (dense GEMMs with the
mask): this measures quality, not speed (bench_sparse.py measures speed).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import lowbit_recipes


def val_loss(out_dir: str) -> float:
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line)["val_loss"] for line in f if '"val_loss"' in line][-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--fractions", default="0.5,0.7", help="sparse.dense_after_fraction values, comma-separated")
    p.add_argument("--gradient", default="ste", choices=["ste", "masked"])
    p.add_argument("--quick", action="store_true", help="20 steps, one fraction")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.fractions = 20, "0.5"
    base = [f"model.dim={args.dim}", f"model.n_layers={args.layers}", "model.n_heads=2", "model.n_kv_heads=1",
            f"model.hidden_dim={args.hidden}", "model.max_seq_len=64", "data.seq_len=64", "data.batch_size=8",
            f"train.steps={args.steps}", f"train.warmup_steps={max(1, args.steps // 12)}", "train.eval_batches=8",
            "train.eval_every=0", "train.checkpoint_every=0", "optim.lr=0.01", "optim.name=adamw",
            "float8.enabled=false", f"sparse.gradient={args.gradient}"]
    runs = [("dense", ["sparse.enabled=false"]), ("2:4 FFN", ["sparse.enabled=true"])]
    for f in args.fractions.split(","):
        runs.append((f"2:4 FFN, dense after {float(f):.0%}", ["sparse.enabled=true", f"sparse.dense_after_fraction={f}"]))
    tool = lowbit_recipes.tool_path("lowbit-train")
    config = os.path.join(lowbit_recipes.config_dir(), "pretrain_tiny.yaml")
    losses = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(runs):
            out = os.path.join(tmp, str(i))
            subprocess.run([tool, "--config", config, *base, *extra, f"train.output_dir={out}"], check=True,
                           stdout=subprocess.DEVNULL)
            losses[name] = val_loss(out)
            print(f"# {name}: val loss {losses[name]:.4f}", file=sys.stderr, flush=True)
    dense, sparse = losses["dense"], losses["2:4 FFN"]
    print(f"Llama dim {args.dim}, {args.layers} layers, FFN hidden {args.hidden}, {args.steps} steps of 8 x 64 bytes of "
          f"fortunes, AdamW lr 0.01, gradient {args.gradient}, float32 on the CPU (lowbit-train)\n")
    print("| run | val loss | gap to dense | part of the 2:4 gap closed |")
    print("|---|---|---|---|")
    for name, loss in losses.items():
        closed = "" if name in ("dense", "2:4 FFN") or sparse == dense else f"{(sparse - loss) / (sparse - dense):.0%}"
        print(f"| {name} | {loss:.4f} | {loss - dense:+.4f} | {closed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
