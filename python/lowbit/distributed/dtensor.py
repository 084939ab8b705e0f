"""Small DTensor helpers that let lowbit's optimizers step FSDP2-sharded parameters.

FSDP2 parameters are DTensors sharded on dim 0. lowbit's fused optimizer ops run on each rank's
local shard (their quantization blocks never span ranks), and their state is per shard: saved
under keys that name the rank, so torch.distributed.checkpoint keeps every rank's state (plain
tensors under one shared key would be taken as replicated and only one copy kept).
"""

from typing import Optional

import torch


def is_dtensor(t: Optional[torch.Tensor]) -> bool:
    """True for a ``torch.distributed.tensor.DTensor``."""
    return t is not None and hasattr(t, "_local_tensor") and hasattr(t, "device_mesh")


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (no copy, no autograd), or ``t`` itself."""
    return t._local_tensor if is_dtensor(t) else t


def shard_state_key(key: str, param: torch.Tensor) -> str:
    """``key`` for a plain parameter; ``"<key>@rank<r>"`` (r: rank in the parameter's mesh) for a
    DTensor, whose optimizer state differs per rank."""
    if not is_dtensor(param):
        return key
    mesh = param.device_mesh
    if mesh.ndim != 1:
        raise NotImplementedError(f"lowbit optimizers: parameters sharded over a {mesh.ndim}-D mesh are not "
                                  "supported (FSDP over a 1-D mesh is)")
    return f"{key}@rank{mesh.get_local_rank()}"
