"""2:4 sparse training linear: forward + backward at ViT-L MLP and Llama-3-8B FFN shapes vs dense.

For each (tokens, K, N): a bf16 nn.Linear (the baseline) against lowbit's SemiSparseLinear (weight
pruned and compressed every forward: prune + compress are inside the timed step) and
SemiSparseActivationLinear (input pruned every forward), all in this process, printing each
one's speedup over dense. The parts are timed too: prune_2_4 alone, and the 2:4 GEMM alone
(semi_sparse_mm, compression included) against the dense GEMM of the same shape.

Only shapes that measure faster belong in lowbit's measured-faster table (sparse/speed_table.cpp),
which the default filter of convert_to_semi_sparse_training reads; the run ends by printing the
rows to add there (none when nothing was faster).

    python benchmarks/bench_sparse.py --device cuda --out results/sparse.json
    python benchmarks/bench_sparse.py --device cuda --quick     # the GPU window: ViT-L MLP and Llama w1/w3, fewer iterations
    python benchmarks/bench_sparse.py --device cpu --quick      # CPU smoke run (the reference: no speedup)
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowbit  # noqa: E402
from lowbit.sparse import SemiSparseActivationLinear, SemiSparseLinear  # noqa: E402
from runner import Report, time_ms  # noqa: E402

# (tokens, in_features K, out_features N)
SHAPES = {
    "vit-l mlp fc1": (13008, 1024, 4096),
    "vit-l mlp fc2": (13008, 4096, 1024),
    "llama3-8b w1/w3": (16384, 4096, 14336),
    "llama3-8b w2": (16384, 14336, 4096),
}
QUICK = {"tiny fc1": (256, 128, 256), "tiny fc2": (256, 256, 128)}


def fwd_bwd(module: torch.nn.Module, xs, grad):
    def step(i):
        module(xs[i % len(xs)]).backward(grad)
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true",
                   help="fewer shapes and iterations on CUDA (the GPU window); tiny shapes on CPU (smoke run)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    dev = args.device
    dtype = torch.bfloat16 if dev.startswith("cuda") else torch.float32
    on_gpu = dev.startswith("cuda")
    if not on_gpu:
        shapes, iters = QUICK, (3 if args.quick else 10)
    elif args.quick:
        shapes, iters = {k: SHAPES[k] for k in ("vit-l mlp fc1", "vit-l mlp fc2", "llama3-8b w1/w3")}, 10
    else:
        shapes, iters = SHAPES, 30
    report = Report("2:4 sparse training linear forward+backward (vs dense nn.Linear)", dev)
    gpu = report.env["device"]
    faster = []

    for name, (m, k, n) in shapes.items():
        torch.manual_seed(0)
        dense = torch.nn.Linear(k, n, bias=False, device=dev, dtype=dtype)
        xs = [torch.randn(m, k, device=dev, dtype=dtype, requires_grad=True) for _ in range(2)]
        # activation-sparse inputs as after a squared ReLU: non-negative, mostly zero
        acts = [torch.relu(torch.randn(m, k, device=dev, dtype=dtype)).square().requires_grad_() for _ in range(2)]
        grad = torch.randn(m, n, device=dev, dtype=dtype)
        t_dense = time_ms(fwd_bwd(dense, xs, grad), dev, iters=iters)
        case = f"{name} {m}x{k}x{n}"
        for label, cls, inputs, target in (("weight 2:4", SemiSparseLinear, xs, "weight"),
                                           ("activation 2:4", SemiSparseActivationLinear, acts, "activation")):
            sparse = cls.from_dense(dense)
            t = time_ms(fwd_bwd(sparse, inputs, grad), dev, iters=iters)
            row = report.add(f"{case} fwd+bwd", "dense", t_dense, label, t)
            if row.speedup > 1:
                faster.append((target, n, k, m, row.speedup))

        # The parts: prune alone, and the 2:4 GEMM (compression included) against the dense GEMM.
        w = dense.weight.detach()
        x = xs[0].detach()
        t_prune = time_ms(lambda i: lowbit.core.prune_2_4(w), dev, iters=iters)
        wp = lowbit.core.prune_2_4(w)[0]
        t_mm = time_ms(lambda i: x @ w.t(), dev, iters=iters)
        t_smm = time_ms(lambda i: torch.ops.lowbit.semi_sparse_mm(wp, x.t(), None, True), dev, iters=iters)
        report.add(f"{case} forward GEMM", "dense", t_mm, "2:4+compress", t_smm)
        print(f"#   prune_2_4 of the {n}x{k} weight: {t_prune:.4f} ms ({100 * t_prune / t_dense:.1f}% of dense fwd+bwd)")

    print("# rows for sparse/speed_table.cpp (measured faster than dense; none means keep the table as it is):")
    for target, n, k, m, speedup in faster:
        kind = "Weight" if target == "weight" else "Activation"
        print(f"#   {{SemiSparseTarget::{kind}, {n}, {k}, {m}, {speedup:.2f}, \"{gpu}\"}},")
    if not faster:
        print("#   (none)")
    report.save(args.out)


if __name__ == "__main__":
    main()
