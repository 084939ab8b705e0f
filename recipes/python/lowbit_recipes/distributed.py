"""The distributed side of pretrain_llama (``distributed.*`` keys): torchrun ranks, FSDP2 per
transformer block (or DDP with ``distributed.shard=false``), float8 all-gather, rank-aware outputs
and checkpoints. Mirrors recipes/distributed_run.{h,cpp}.

    torchrun --standalone --nproc_per_node=2 -m lowbit_recipes.pretrain_llama --config pretrain_tiny distributed.enabled=true

Rank r trains on batch ``step * world_size + r`` of the single-process stream (one rank is the
single-process run); rank 0 prints and writes config.yaml / metrics.jsonl. Checkpoints: rank 0
writes the full model.safetensors (what fine-tuning reads) and every rank its shard of the
parameters and optimizer state (torch.distributed.checkpoint under checkpoint/sharded), so a
resume on the same world size continues exactly.
"""

from __future__ import annotations

import datetime
import os
import shutil

import torch
import torch.distributed as dist
import torch.nn as nn
from safetensors.torch import save_file

import lowbit.float8


class DistributedRun:
    """Rank 0 of 1 unless ``distributed.enabled``; then one process of torchrun's job."""

    def __init__(self, cfg: dict):
        d = cfg["distributed"]
        self.enabled = bool(d["enabled"])
        self.shard_params = bool(d["shard"])
        self.reshard_after_forward = bool(d["reshard_after_forward"])
        self.float8_all_gather = bool(d["float8_all_gather"])
        self.rank, self.world_size, self.local_rank = 0, 1, 0
        self._device = torch.device("cpu")  # where small collectives (mean) run: the training device
        self.model: nn.Module | None = None  # the sharded model (FSDP2) or its DDP wrapper
        if not self.enabled:
            return
        missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise RuntimeError(f"distributed.enabled=true: environment variable(s) {', '.join(missing)} not set; "
                               "launch with torchrun --nproc_per_node=N -m lowbit_recipes.pretrain_llama ...")
        backend = d["backend"]
        if backend == "auto":
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=d["timeout_s"]))
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, train_device: str) -> torch.device:
        """``train.device``, with CUDA ranks on GPU LOCAL_RANK."""
        dev = torch.device(train_device)
        if self.enabled and dev.type == "cuda":
            dev = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(dev)
        self._device = dev
        return dev

    def float8_config(self, config: "lowbit.float8.Float8LinearConfig") -> "lowbit.float8.Float8LinearConfig":
        config.enable_fsdp_float8_all_gather = self.float8_all_gather
        return config

    def shard(self, model: nn.Module, device: torch.device) -> nn.Module:
        """FSDP2 on every block of ``model.layers`` and the root (or DDP); returns what to call forward on."""
        if not self.enabled:
            return model
        if not self.shard_params:
            kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
            self.model = nn.parallel.DistributedDataParallel(model, **kwargs)
            return self.model
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (self.world_size,))
        for block in model.layers:
            fully_shard(block, mesh=mesh, reshard_after_forward=self.reshard_after_forward)
        fully_shard(model, mesh=mesh, reshard_after_forward=self.reshard_after_forward)
        self.model = model
        return model

    def batch_index(self, step: int) -> int:
        return step * self.world_size + self.rank

    def after_optimizer_step(self, model: nn.Module) -> None:
        if self.enabled and self.float8_all_gather:
            lowbit.float8.precompute_float8_dynamic_scale_for_fsdp(model)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (every rank must call it)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._device)  # an NCCL-only group needs CUDA
        dist.all_reduce(t)
        return t.item() / self.world_size

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def finish(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()

    # ---- checkpoints ---------------------------------------------------------------------------

    @staticmethod
    def is_sharded_checkpoint(folder: str) -> bool:
        return os.path.isdir(os.path.join(folder, "sharded"))

    def save_checkpoint(self, folder: str, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        """folder/model.safetensors (the full model, rank 0) + folder/sharded (every rank's shard of
        the model and optimizer, torch.distributed.checkpoint); written beside and renamed into place."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_state_dict)

        tmp = folder + ".tmp"
        if self.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        self.barrier()
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.is_main:
            weights = {k: _plain(v).contiguous().cpu() for k, v in full.items()}
            save_file(weights, os.path.join(tmp, "model.safetensors"),
                      metadata={"format": "lowbit.recipes.llama/1", "step": str(step),
                                "world_size": str(self.world_size)})
        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd, "meta": {"step": step, "world_size": self.world_size}},
                 checkpoint_id=os.path.join(tmp, "sharded"))
        self.barrier()
        if self.is_main:
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)
        self.barrier()

    def load_checkpoint(self, folder: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        path = os.path.join(folder, "sharded")
        meta = {"meta": {"step": 0, "world_size": 0}}
        dcp.load(meta, checkpoint_id=path)  # first the world size: a shard's state fits only its own rank
        saved = meta["meta"]["world_size"]
        if saved != self.world_size:
            raise RuntimeError(f"checkpoint {folder} was saved by {saved} ranks; this run has {self.world_size} "
                               f"(resume with torchrun --nproc_per_node={saved})")
        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=path)
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        self.after_optimizer_step(model)
        return int(meta["meta"]["step"])


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A full state dict's tensor as a plain tensor (fp8 all-gather weights wrap theirs)."""
    return t._tensor if isinstance(t, lowbit.float8.Float8AllGatherWeight) else t
