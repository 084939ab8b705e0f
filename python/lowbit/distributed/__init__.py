"""lowbit.distributed: lowbit on torch.distributed (FSDP2, torchrun).

* ``lowbit.float8`` plugs float8 all-gather into FSDP2 (``enable_fsdp_float8_all_gather``,
  ``precompute_float8_dynamic_scale_for_fsdp``).
* ``lowbit.optim``'s low-bit AdamW optimizers step FSDP2 DTensor parameters shard by shard
  (``lowbit.distributed.dtensor``).
"""

from .dtensor import is_dtensor, local_tensor, shard_state_key

__all__ = ["is_dtensor", "local_tensor", "shard_state_key"]
