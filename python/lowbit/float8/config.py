"""Float8LinearConfig: the C++ config, bound once through lowbit._C.

Recipes: ``"tensorwise"`` (e4m3 input/weight, e5m2 grad_output, per-tensor scales, three fp8
GEMMs), ``"rowwise"`` (e4m3, per-row scales along each GEMM's reduction dim, power-of-2 scales,
three fp8 GEMMs), ``"rowwise_with_gw_hp"`` (rowwise, grad_weight GEMM in high precision).
Options: ``emulate``, ``pad_inner_dim``, ``force_recompute_fp8_weight_in_bwd``,
``enable_fsdp_float8_all_gather``, ``round_scales_to_power_of_2``.
"""

from .. import _C

Float8LinearConfig = _C.Float8LinearConfig

__all__ = ["Float8LinearConfig"]
