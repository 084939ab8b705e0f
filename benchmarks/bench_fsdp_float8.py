"""FSDP2 with float8 weights: bytes all-gathered per step and step time, bf16 vs float8 all-gather.

The model is a stack of float8 (tensorwise) MLP blocks, each block one FSDP2 unit. Baseline: the
float8 model with FSDP2's bf16 all-gather (MixedPrecisionPolicy(param_dtype=bfloat16)); candidate:
the same with ``enable_fsdp_float8_all_gather`` and ``precompute_float8_dynamic_scale_for_fsdp``.
Both run in the same ranks on the same batches; the bytes are counted at the collectives
(all-gather output, reduce-scatter input, all-reduce tensors) and the ratio is printed.

    python benchmarks/bench_fsdp_float8.py --device cpu --world-size 2     # Gloo ranks, emulated fp8 GEMMs
    python benchmarks/bench_fsdp_float8.py --device cuda --world-size 1    # NCCL (one GPU: world size 1)
    python benchmarks/bench_fsdp_float8.py --device cpu --quick            # smoke run (CI)

On CPU the fp8 GEMMs are emulated in float32, so step time says little; the bytes are the result.
NCCL refuses two ranks on one GPU, so a single GPU measures world size 1 (no all-gather traffic,
but the NCCL path, the hooks and the fp8 GEMMs run); bytes per rank grow as (W-1)/W of these with W ranks.
"""

import argparse
import datetime
import json
import multiprocessing as mp
import os
import socket
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CommLog:
    """Counts the bytes FSDP2 moves through torch.distributed while active."""

    def __init__(self, dist):
        self.dist = dist
        self.bytes = {"all_gather": 0, "reduce_scatter": 0, "all_reduce": 0}

    def __enter__(self):
        d = self.dist
        self._orig = (d.all_gather_into_tensor, d.reduce_scatter_tensor, d.all_reduce)

        def arg(a, k, i, name):  # FSDP2 passes some tensors by keyword
            return k[name] if name in k else a[i]

        def ag(*a, **k):
            out = arg(a, k, 0, "output_tensor")
            self.bytes["all_gather"] += out.numel() * out.element_size()
            return self._orig[0](*a, **k)

        def rs(*a, **k):
            inp = arg(a, k, 1, "input")
            self.bytes["reduce_scatter"] += inp.numel() * inp.element_size()
            return self._orig[1](*a, **k)

        def ar(*a, **k):
            t = arg(a, k, 0, "tensor")
            self.bytes["all_reduce"] += t.numel() * t.element_size()
            return self._orig[2](*a, **k)

        d.all_gather_into_tensor, d.reduce_scatter_tensor, d.all_reduce = ag, rs, ar
        return self

    def __exit__(self, *exc):
        self.dist.all_gather_into_tensor, self.dist.reduce_scatter_tensor, self.dist.all_reduce = self._orig


def _rank_main(rank: int, world: int, port: int, args: dict, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    try:
        queue.put((rank, run_rank(rank, world, args)))
    except BaseException as e:  # noqa: BLE001 - reported by the parent
        import traceback

        queue.put((rank, {"error": f"{e}\n{traceback.format_exc()}"}))


def run_rank(rank: int, world: int, args: dict) -> dict:
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    sys.path.insert(0, BENCH_DIR)
    from lowbit.float8 import Float8LinearConfig, convert_to_float8_training, precompute_float8_dynamic_scale_for_fsdp
    from runner import time_ms

    device = args["device"]
    if device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    else:
        torch.cuda.set_device(rank)
    backend = "gloo" if device == "cpu" else "nccl"
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=300),
                            device_id=None if device == "cpu" else torch.device("cuda", rank))
    dim, hidden, layers, tokens = args["dim"], args["hidden"], args["layers"], args["tokens"]

    def block():
        return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.SiLU(), nn.Linear(hidden, dim, bias=False))

    def build(fp8_all_gather: bool):
        torch.manual_seed(0)
        model = nn.Sequential(*[block() for _ in range(layers)]).to(device)
        config = Float8LinearConfig(emulate=device == "cpu", enable_fsdp_float8_all_gather=fp8_all_gather)
        convert_to_float8_training(model, config=config)
        mp_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        for b in model:
            fully_shard(b, mp_policy=mp_policy)
        fully_shard(model, mp_policy=mp_policy)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)

    g = torch.Generator(device=device).manual_seed(rank)
    xs = [torch.randn(tokens, dim, device=device, dtype=torch.bfloat16, generator=g) for _ in range(2)]
    runs = {}
    for name, fp8 in (("bf16 all-gather", False), ("float8 all-gather", True)):
        model, opt = build(fp8)

        def step(i, model=model, opt=opt, fp8=fp8):
            model(xs[i % 2]).float().square().mean().backward()
            opt.step()
            opt.zero_grad()
            if fp8:
                precompute_float8_dynamic_scale_for_fsdp(model)

        step(0)  # lazy init and first gathers outside the count
        with CommLog(dist) as log:
            step(1)
        runs[name] = (step, log.bytes)
    # Timed in alternating rounds, so a machine that slows down mid-run slows both alike.
    times = {name: [] for name in runs}
    for _ in range(args["rounds"]):
        for name, (step, _) in runs.items():
            times[name].append(time_ms(step, device, warmup=args["warmup"], iters=args["iters"]))
    results = {name: {"ms": min(times[name]), **{f"{k}_bytes": v for k, v in runs[name][1].items()}}
               for name in runs}
    dist.destroy_process_group()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--world-size", type=int, default=None, help="ranks (default: 2 on cpu, 1 on cuda)")
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--iters", type=int, default=10, help="timed steps per round (3 rounds, best round reported)")
    p.add_argument("--quick", action="store_true", help="tiny model, 2 iterations (CI smoke run)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    world = a.world_size or (2 if a.device == "cpu" else 1)
    args = dict(device=a.device, dim=a.dim, hidden=a.hidden, layers=a.layers, tokens=a.tokens, iters=a.iters, warmup=1,
                rounds=3)
    if a.quick:
        args.update(dim=64, hidden=128, layers=2, tokens=64, iters=1, warmup=0, rounds=1)
    elif a.device == "cpu" and a.dim * a.hidden > 1 << 20:
        args.update(dim=256, hidden=1024, tokens=128, iters=2)  # emulated fp8 GEMMs on shared cores: keep it short

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, args, queue)) for r in range(world)]
    for proc in procs:
        proc.start()
    results = {}
    try:
        for _ in range(world):
            rank, res = queue.get(timeout=1800)
            results[rank] = res
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    for rank, res in results.items():
        if "error" in res:
            sys.exit(f"rank {rank} failed:\n{res['error']}")

    sys.path.insert(0, BENCH_DIR)
    from runner import Report

    r0 = results[0]
    base, cand = r0["bf16 all-gather"], r0["float8 all-gather"]
    shape = f"{args['layers']}x[{args['dim']}->{args['hidden']}->{args['dim']}] {args['tokens']} tok/rank, W={world}"
    report = Report(f"FSDP2 float8 all-gather vs bf16 all-gather ({a.device}, {'Gloo' if a.device == 'cpu' else 'NCCL'})",
                    a.device)
    report.add(f"step {shape}", "bf16-ag", base["ms"], "fp8-ag", cand["ms"])
    for kind in ("all_gather", "reduce_scatter", "all_reduce"):
        b, c = base[f"{kind}_bytes"], cand[f"{kind}_bytes"]
        ratio = f"{c / b:.3f}x" if b else "-"
        print(f"  {kind:<15} bytes/step/rank: bf16-ag {b:>12,d} | fp8-ag {c:>12,d} | fp8/bf16 {ratio}")
    if a.out:
        report.save(a.out)
        with open(os.path.splitext(a.out)[0] + "_bytes.json", "w") as f:
            json.dump({"world_size": world, "args": args, "rank0": r0}, f, indent=2)


if __name__ == "__main__":
    main()
