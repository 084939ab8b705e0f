"""2:4 semi-structured sparse training: linears whose weight (or input) is pruned to 2:4 every
call, so the forward and one backward GEMM run on the GPU's sparse tensor cores.

    from lowbit.sparse import SemiSparseTrainingConfig, convert_to_semi_sparse_training
    summary = convert_to_semi_sparse_training(model, module_filter_fn=lambda m, fqn: "mlp" in fqn)
    print(summary)                     # what was converted, what was skipped and why
    ...                                # train
    swap_semi_sparse_linear_with_linear(model)   # dense again (sparse-then-dense schedules)

or, torchao's call: ``swap_linear_with_semi_sparse_linear(model, {"mlp.fc1": SemiSparseLinear})``.
The autograd formulas live in C++ (``torch.ops.lowbit.semi_sparse_linear`` /
``semi_sparse_activation_linear``) and are the ones C++ loops use through
``lowbit::sparse::convert_to_semi_sparse_training``. The pruning rule is
``lowbit.core.prune_2_4``.

2:4 inference: ``sparsify_(model, SemiSparseWeightConfig())`` (also ``lowbit.sparsify_``) prunes
weights once and stores them compressed, as the quantized format ``"sparse24"``.
"""

from .config import SemiSparseTrainingConfig
from .sparsify import SemiSparseWeightConfig, sparsify_
from .convert import (
    ConvertSummary,
    convert_to_semi_sparse_training,
    dense_after_step,
    measured_speedups,
    swap_linear_with_semi_sparse_linear,
    swap_semi_sparse_linear_with_linear,
)
from .linear import SemiSparseActivationLinear, SemiSparseLinear

__all__ = [
    "ConvertSummary",
    "SemiSparseActivationLinear",
    "SemiSparseLinear",
    "SemiSparseTrainingConfig",
    "SemiSparseWeightConfig",
    "convert_to_semi_sparse_training",
    "dense_after_step",
    "measured_speedups",
    "sparsify_",
    "swap_linear_with_semi_sparse_linear",
    "swap_semi_sparse_linear_with_linear",
]
