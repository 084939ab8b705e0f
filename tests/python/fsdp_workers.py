"""Rank functions for test_fsdp_float8.py (run by dist_launch.run_on_ranks on Gloo ranks)."""

import copy
from typing import Dict, List

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

import lowbit
from lowbit.float8 import (Float8AllGatherWeight, Float8LinearConfig, convert_to_float8_training,
                           precompute_float8_dynamic_scale_for_fsdp)


def make_model(seed: int = 0, dtype=torch.float32) -> nn.Module:
    # 33 output rows: dim 0 does not split evenly over 2 ranks (uneven shards, padding).
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 33, bias=False), nn.ReLU(),
                         nn.Linear(33, 16)).to(dtype)


def config(fp8_all_gather: bool) -> Float8LinearConfig:
    return Float8LinearConfig(emulate=True, pad_inner_dim=True, enable_fsdp_float8_all_gather=fp8_all_gather)


def batches(rank: int, steps: int, dtype=torch.float32) -> List[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + rank)
    return [torch.randn(8, 32, generator=g).to(dtype) for _ in range(steps)]


def shard(model: nn.Module, reshard_after_forward: bool, mp_policy=None) -> nn.Module:
    kw = {"reshard_after_forward": reshard_after_forward}
    if mp_policy is not None:
        kw["mp_policy"] = mp_policy
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, **kw)
    fully_shard(model, **kw)
    return model


def full(t: torch.Tensor) -> torch.Tensor:
    t = t.full_tensor() if isinstance(t, DTensor) else t
    if isinstance(t, Float8AllGatherWeight):
        t = t._tensor
    return t.detach().clone()


def average_grads(model: nn.Module) -> None:
    for p in model.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(dist.get_world_size())


def parity(rank: int, world_size: int, *, steps: int = 4, reshard_after_forward: bool = True,
           precompute: bool = False, checkpoint: bool = False, compile: bool = False) -> Dict:
    """Sharded float8 model with fp8 all-gather vs the unsharded float8 model with averaged grads."""
    base = make_model()
    ref = convert_to_float8_training(copy.deepcopy(base), config=config(False))
    fsdp = shard(convert_to_float8_training(copy.deepcopy(base), config=config(True)), reshard_after_forward)
    if checkpoint:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

        for i in (0, 2):
            fsdp[i] = checkpoint_wrapper(fsdp[i])
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2)
    opt = torch.optim.AdamW(fsdp.parameters(), lr=1e-2)
    run = torch.compile(fsdp) if compile else fsdp
    losses, ref_losses = [], []
    for x in batches(rank, steps):
        loss = run(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        if precompute:
            precompute_float8_dynamic_scale_for_fsdp(fsdp)
        ref_loss = ref(x).square().mean()
        ref_loss.backward()
        average_grads(ref)
        ref_opt.step()
        ref_opt.zero_grad()
        losses.append(loss.item())
        ref_losses.append(ref_loss.item())
    max_diff = max((full(a) - full(b)).abs().max().item() for a, b in zip(fsdp.parameters(), ref.parameters()))
    return {"losses": losses, "ref_losses": ref_losses, "max_param_diff": max_diff}


def mixed_precision(rank: int, world_size: int, *, steps: int = 3, precompute: bool = False) -> Dict:
    """bf16 params / fp32 reduce: fp8 all-gather equals FSDP2's bf16 all-gather of the same float8 model."""
    base = make_model()
    mp_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    ref = shard(convert_to_float8_training(copy.deepcopy(base), config=config(False)), True, mp_policy)
    fsdp = shard(convert_to_float8_training(copy.deepcopy(base), config=config(True)), True, mp_policy)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2)
    opt = torch.optim.AdamW(fsdp.parameters(), lr=1e-2)
    losses, ref_losses = [], []
    for x in batches(rank, steps, torch.bfloat16):
        for m, o, out in ((fsdp, opt, losses), (ref, ref_opt, ref_losses)):
            loss = m(x).float().square().mean()
            loss.backward()
            o.step()
            o.zero_grad()
            out.append(loss.item())
        if precompute:
            precompute_float8_dynamic_scale_for_fsdp(fsdp)
    max_diff = max((full(a) - full(b)).abs().max().item() for a, b in zip(fsdp.parameters(), ref.parameters()))
    return {"losses": losses, "ref_losses": ref_losses, "max_param_diff": max_diff}


def scenarios(rank: int, world_size: int, *, cases: List) -> Dict:
    """Runs [(name, function name, kwargs)] in one launch; a failing case returns its traceback."""
    import traceback

    out = {}
    for name, fn, kwargs in cases:
        try:
            out[name] = globals()[fn](rank, world_size, **kwargs)
        except Exception:  # noqa: BLE001 - reported per case by the test
            out[name] = {"error": traceback.format_exc()}
        dist.barrier()
    return out


class CommLog:
    """Records the bytes FSDP2 all-gathers and the all-reduces issued while active."""

    def __init__(self):
        self.all_gather_bytes = 0
        self.all_gather_dtypes = set()
        self.all_reduce_bytes = 0
        self.all_reduces = 0

    def __enter__(self):
        self._ag, self._ar = dist.all_gather_into_tensor, dist.all_reduce

        def all_gather_into_tensor(output, input, *args, **kwargs):
            self.all_gather_bytes += output.numel() * output.element_size()
            self.all_gather_dtypes.add(str(output.dtype))
            return self._ag(output, input, *args, **kwargs)

        def all_reduce(tensor, *args, **kwargs):
            self.all_reduces += 1
            self.all_reduce_bytes += tensor.numel() * tensor.element_size()
            return self._ar(tensor, *args, **kwargs)

        dist.all_gather_into_tensor, dist.all_reduce = all_gather_into_tensor, all_reduce
        return self

    def __exit__(self, *exc):
        dist.all_gather_into_tensor, dist.all_reduce = self._ag, self._ar


def comm_bytes(rank: int, world_size: int, *, mode: str, precompute: bool = False) -> Dict:
    """Bytes all-gathered in one forward + backward (reshard_after_forward=False: one gather per layer).

    mode: "fp8" (fp8 all-gather), "fp32" (float8 model, fp32 all-gather), "bf16" (bf16 param_dtype)."""
    base = make_model()
    mp_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16) if mode == "bf16" else None
    model = shard(convert_to_float8_training(base, config=config(mode == "fp8")), False, mp_policy)
    x = batches(rank, 1, torch.bfloat16 if mode == "bf16" else torch.float32)[0]
    model(x).float().sum().backward()  # step 0 gathers (lazy init) outside the log
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    if precompute:
        with CommLog() as pre:
            precompute_float8_dynamic_scale_for_fsdp(model)
    with CommLog() as log:
        model(x).float().sum().backward()
    out = {"all_gather_bytes": log.all_gather_bytes, "dtypes": sorted(log.all_gather_dtypes),
           "all_reduces": log.all_reduces, "all_reduce_bytes": log.all_reduce_bytes}
    if precompute:
        out.update(precompute_all_reduces=pre.all_reduces, precompute_all_reduce_bytes=pre.all_reduce_bytes)
    return out


def dcp_resume(rank: int, world_size: int, *, path: str, optim: str = "AdamW", steps: int = 4) -> Dict:
    """Saves the sharded float8 model and its optimizer with torch.distributed.checkpoint halfway,
    loads both into a fresh sharded model, and finishes: equal to the run without the stop."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    import lowbit.optim

    def fresh():
        m = shard(convert_to_float8_training(make_model(), config=config(True)), True)
        if optim == "AdamW":
            return m, torch.optim.AdamW(m.parameters(), lr=1e-2)
        return m, getattr(lowbit.optim, optim)(m.parameters(), lr=1e-2, min_quantized_size=0, block_size=64)

    def train(m, o, xs):
        losses = []
        for x in xs:
            loss = m(x).square().mean()
            loss.backward()
            o.step()
            o.zero_grad()
            precompute_float8_dynamic_scale_for_fsdp(m)
            losses.append(loss.item())
        return losses

    xs = batches(rank, steps)
    m, o = fresh()
    full_losses = train(m, o, xs)
    m, o = fresh()
    first = train(m, o, xs[: steps // 2])
    model_sd, optim_sd = get_state_dict(m, o)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=path)
    m, o = fresh()
    model_sd, optim_sd = get_state_dict(m, o)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(m, o, model_state_dict=state["model"], optim_state_dict=state["optim"])
    second = train(m, o, xs[steps // 2:])
    return {"losses": full_losses, "resumed_losses": first + second,
            "state_keys": sorted(next(iter(o.state_dict()["state"].values())).keys())}


def lowbit_optimizer(rank: int, world_size: int, *, name: str, steps: int = 3) -> Dict:
    """A low-bit AdamW on FSDP2 DTensor parameters equals the same optimizer stepping each rank's
    shard as a plain tensor (state per local shard), fed the averaged gradients."""
    import lowbit.optim

    cls = getattr(lowbit.optim, name)
    base = make_model()
    fsdp = shard(convert_to_float8_training(copy.deepcopy(base), config=config(True)), True)
    ref = convert_to_float8_training(copy.deepcopy(base), config=config(False))
    # min_quantized_size=0: every shard gets quantized states, however small.
    opt = cls(fsdp.parameters(), lr=1e-2, min_quantized_size=0, block_size=64)
    ref_shards = [full(p).chunk(world_size)[rank].clone() for p in ref.parameters()]
    ref_shards = [s.requires_grad_() for s in ref_shards]
    ref_opt = cls(ref_shards, lr=1e-2, min_quantized_size=0, block_size=64)
    for x in batches(rank, steps):
        fsdp(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
        precompute_float8_dynamic_scale_for_fsdp(fsdp)
        # the reference: full model from the reference shards, averaged grads, shard-local step
        with torch.no_grad():
            for p, s in zip(ref.parameters(), ref_shards):
                full_p = _all_gather_rows(s, p.shape[0], world_size)
                p.copy_(full_p)
        ref(x).square().mean().backward()
        average_grads(ref)
        for p, s in zip(ref.parameters(), ref_shards):
            s.grad = p.grad.chunk(world_size)[rank].clone()
        ref.zero_grad()
        ref_opt.step()
        ref_opt.zero_grad()
    diffs = [(full(p) - _all_gather_rows(s.detach(), p.shape[0], world_size)).abs().max().item()
             for p, s in zip(fsdp.parameters(), ref_shards)]
    moved = max((full(p) - full(q)).abs().max().item() for p, q in zip(fsdp.parameters(), base.parameters()))
    return {"max_diff": max(diffs), "moved": moved}


def _all_gather_rows(shard_t: torch.Tensor, rows: int, world_size: int) -> torch.Tensor:
    """The full tensor from every rank's dim-0 chunk (torch.chunk split, possibly uneven)."""
    per = -(-rows // world_size)
    padded = torch.zeros((per, *shard_t.shape[1:]), dtype=shard_t.dtype)
    padded[: shard_t.shape[0]] = shard_t
    out = torch.empty((per * world_size, *shard_t.shape[1:]), dtype=shard_t.dtype)
    dist.all_gather_into_tensor(out, padded)
    return out[:rows]


def cpp_parity_reference(rank: int, world_size: int, *, path: str, steps: int = 4, lr: float = 0.1) -> Dict:
    """The Python half of the C++/Python parity test: writes the initial weights and this rank's
    batches for the C++ run (tests/cpp/test_distributed_ranks.cpp, PythonParity), then trains the
    same model with FSDP2 + fp8 all-gather + SGD and returns the losses and the full parameters."""
    from safetensors.torch import save_file

    base = make_model()
    if rank == 0:
        save_file({k: v.contiguous() for k, v in base.state_dict().items()}, f"{path}/init.safetensors")
    xs = torch.stack(batches(rank, steps))
    save_file({"x": xs, "lr": torch.tensor(lr, dtype=torch.float64)}, f"{path}/batches_rank{rank}.safetensors")
    model = shard(convert_to_float8_training(base, config=config(True)), True)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for x in xs:
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        precompute_float8_dynamic_scale_for_fsdp(model)
        losses.append(loss.item())
    params = {name: full(p) for name, p in model.named_parameters()}
    return {"losses": losses, "params": params}


def nccl_one_rank(rank: int, world_size: int, steps: int = 3) -> Dict:
    """Runs inside a Gloo-initialized rank: opens an NCCL group of one on the GPU and compares fp8
    all-gather with FSDP2's bf16 all-gather of the same float8 model (real fp8 GEMMs)."""
    from torch.distributed.device_mesh import init_device_mesh

    if torch.cuda.get_device_capability() < (8, 9):
        return {"losses": [], "ref_losses": [], "max_param_diff": 0.0}
    mesh = init_device_mesh("cuda", (1,))
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256)).cuda()
    mp_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    models = []
    for fp8 in (True, False):
        m = convert_to_float8_training(copy.deepcopy(base), config=Float8LinearConfig(enable_fsdp_float8_all_gather=fp8))
        for layer in m:
            if isinstance(layer, nn.Linear):
                fully_shard(layer, mesh=mesh, mp_policy=mp_policy)
        fully_shard(m, mesh=mesh, mp_policy=mp_policy)
        models.append((m, torch.optim.AdamW(m.parameters(), lr=1e-3)))
    losses = {True: [], False: []}
    for step in range(steps):
        x = torch.randn(128, 256, device="cuda", dtype=torch.bfloat16, generator=torch.Generator("cuda").manual_seed(step))
        for (m, o), fp8 in zip(models, (True, False)):
            loss = m(x).float().square().mean()
            loss.backward()
            o.step()
            o.zero_grad()
            if fp8:
                precompute_float8_dynamic_scale_for_fsdp(m)
            losses[fp8].append(loss.item())
    diff = max((full(a) - full(b)).abs().max().item() for a, b in zip(models[0][0].parameters(), models[1][0].parameters()))
    return {"losses": losses[True], "ref_losses": losses[False], "max_param_diff": diff}
