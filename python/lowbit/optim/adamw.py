"""AdamW with 8-bit, 4-bit and fp8 states: ``torch.optim.Optimizer`` subclasses over the fused op
``torch.ops.lowbit.adamw_lowbit_step_`` (one call per parameter group; the C++ face
``lowbit::optim::AdamW8bit`` etc. makes the same calls, so both compute the same bits).

Formats (defined in csrc/core/optimizer_state_formats.h):

* ``AdamW8bit``: m and v as uint8 codes of the signed / unsigned dynamic tree maps of
  bitsandbytes and torchao, one fp32 absmax scale per block of ``block_size`` (256) elements;
  about 2.03 bytes per parameter.
* ``AdamW4bit``: m as 4-bit codes of the signed 4-bit dynamic tree map, block-wise (128);
  v as 4-bit codes of the zero-free linear map ``(i + 1) / 16`` with rank-1 normalization
  (Li et al., 2023) where its row / column statistics are no larger than block-wise scales,
  else block-wise; about 1.04 bytes per parameter on large matrices.
* ``AdamWFp8``: m and v as float8_e4m3fn with one scale (absmax / 448) per block of 256.

Parameters with fewer than ``min_quantized_size`` (4096) elements keep fp32 states. Parameters
may be float32 or bfloat16 (with ``bf16_stochastic_round``, updates are rounded stochastically
with bits derived from the step count and element index, so runs are reproducible and resumable
bit for bit).

An inf or NaN gradient element (or one whose square overflows) stays in its element, as in
``torch.optim.AdamW``: it is left out of its block's scales, so its neighbours are stored as if it
were absent (csrc/core/optimizer_state_formats.h states the rule and its one difference from torch).
"""

from itertools import chain
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..distributed.dtensor import local_tensor, shard_state_key

_STATE_KEYS = ("step", "exp_avg", "exp_avg_scale", "exp_avg_sq", "exp_avg_sq_scale")


class _AdamWLowBit(Optimizer):
    """The common optimizer; subclasses fix ``state_format`` and the default ``block_size``."""

    state_format: str = ""
    default_block_size: int = 256

    def __init__(
        self,
        params: Union[Iterable[Tensor], Iterable[Dict[str, Any]]],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        block_size: Optional[int] = None,
        bf16_stochastic_round: bool = False,
        min_quantized_size: int = 4096,
    ) -> None:
        if not 0.0 <= float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        block_size = self.default_block_size if block_size is None else block_size
        if not (64 <= block_size <= 4096 and block_size & (block_size - 1) == 0):
            raise ValueError(f"Invalid block_size: {block_size} (must be a power of 2 in [64, 4096])")
        if min_quantized_size < 0:
            raise ValueError(f"Invalid min_quantized_size: {min_quantized_size}")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            block_size=block_size,
            bf16_stochastic_round=bf16_stochastic_round,
            min_quantized_size=min_quantized_size,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, group: Dict[str, Any]) -> Dict[str, Tensor]:
        tensors = torch.ops.lowbit.adamw_lowbit_init_state(
            local_tensor(p).detach(), self.state_format, group["block_size"], group["min_quantized_size"]
        )
        return dict(zip(_STATE_KEYS, tensors))

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """One AdamW step for every parameter with a gradient (one fused op call per group)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        name = type(self).__name__
        for group in self.param_groups:
            lists: Dict[str, list] = {k: [] for k in ("params", "grads") + _STATE_KEYS}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{name} does not support sparse gradients")
                if torch.is_complex(p) or torch.is_complex(p.grad):
                    raise RuntimeError(f"{name} does not support complex parameters or gradients")
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group))
                # FSDP2 DTensor parameters: the op steps this rank's shard (state per shard).
                lists["params"].append(local_tensor(p))
                lists["grads"].append(local_tensor(p.grad))
                for k in _STATE_KEYS:
                    lists[k].append(state[k])
            if not lists["params"]:
                continue
            beta1, beta2 = group["betas"]
            torch.ops.lowbit.adamw_lowbit_step_(
                lists["params"],
                lists["grads"],
                lists["exp_avg"],
                lists["exp_avg_scale"],
                lists["exp_avg_sq"],
                lists["exp_avg_sq_scale"],
                lists["step"],
                float(group["lr"]),
                float(beta1),
                float(beta2),
                float(group["eps"]),
                float(group["weight_decay"]),
                self.state_format,
                int(group["block_size"]),
                bool(group["bf16_stochastic_round"]),
            )
            # The op writes through raw pointers; tell autograd the parameters changed, as an
            # in-place aten op would (so a stale saved tensor is an error, not a silent bug).
            torch.autograd.graph.increment_version(lists["params"])
        return loss

    def state_dict(self) -> Dict[str, Any]:
        """As ``torch.optim.Optimizer.state_dict``; the state of a DTensor (FSDP2) parameter is this
        rank's shard state, under keys ``"<name>@rank<r>"`` (see ``lowbit.distributed.dtensor``)."""
        sd = super().state_dict()
        params = list(chain.from_iterable(g["params"] for g in self.param_groups))
        ids = list(chain.from_iterable(g["params"] for g in sd["param_groups"]))
        for pid, p in zip(ids, params):
            if pid in sd["state"]:
                sd["state"][pid] = {shard_state_key(k, p): v for k, v in sd["state"][pid].items()}
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """As ``torch.optim.Optimizer.load_state_dict``, but keeps every state tensor's dtype
        (the base class casts floating state to the parameter's dtype, which would corrupt fp8
        codes and fp32 moments of bf16 parameters) and moves all of them, ``step`` included,
        to the parameter's device. A DTensor parameter takes the state saved for this rank."""
        saved_ids = list(chain.from_iterable(g["params"] for g in state_dict["param_groups"]))
        params = list(chain.from_iterable(g["params"] for g in self.param_groups))
        state = dict(state_dict["state"])
        for pid, p in zip(saved_ids, params):
            if pid in state:
                saved = state[pid]
                want = {shard_state_key(k, p): k for k in _STATE_KEYS}
                missing = [k for k in want if k not in saved]
                if missing:
                    raise KeyError(f"{type(self).__name__}.load_state_dict: parameter {pid} has no state "
                                   f"{missing} (saved keys: {sorted(saved)}); a sharded state loads on the same "
                                   "world size and ranks it was saved from")
                state[pid] = {want[k]: v for k, v in saved.items() if k in want}
        state_dict = {**state_dict, "state": state}
        super().load_state_dict(state_dict)
        for pid, p in zip(saved_ids, params):
            if pid in state_dict["state"]:
                self.state[p] = {
                    k: v.to(device=p.device, copy=True) if isinstance(v, Tensor) else v
                    for k, v in state_dict["state"][pid].items()
                }


class AdamW8bit(_AdamWLowBit):
    """AdamW with 8-bit dynamic-tree states (block_size 256): ~2 bytes of state per parameter.
    Same constructor as ``torch.optim.AdamW`` plus ``block_size``, ``bf16_stochastic_round`` and
    ``min_quantized_size`` (smaller parameters keep fp32 states)."""

    state_format = "8bit"
    default_block_size = 256


class AdamW4bit(_AdamWLowBit):
    """AdamW with 4-bit states (Li et al., 2023): m block-wise (128) with the 4-bit dynamic tree
    map, v with rank-1 normalization and the zero-free linear map: ~1 byte per parameter."""

    state_format = "4bit"
    default_block_size = 128


class AdamWFp8(_AdamWLowBit):
    """AdamW with float8_e4m3fn states and one scale per block of 256: ~2 bytes per parameter."""

    state_format = "fp8"
    default_block_size = 256
