"""SemiSparseTrainingConfig: the C++ config, bound once through lowbit._C.

Fields: ``target`` (``"weight"``: prune the weight, SemiSparseLinear; ``"activation"``: prune the
input, SemiSparseActivationLinear), ``algorithm`` (``"largest_abs"`` or ``"largest"``: the
transposable 4x4-tile rules of ``lowbit.core.prune_2_4``), ``gradient`` (``"ste"``: the
straight-through gradient reaches the dense master tensor unmasked; ``"masked"``: masked with the
2:4 pattern, the exact derivative of the pruned forward).
"""

from .. import _C

SemiSparseTrainingConfig = _C.SemiSparseTrainingConfig

__all__ = ["SemiSparseTrainingConfig"]
