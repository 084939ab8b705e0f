"""2:4 sparse inference: ``sparsify_`` prunes weights to 2:4 once and stores them compressed.

The format is the quantized format ``"sparse24"`` (C++ ``csrc/quant/formats/semi_sparse_weight.cpp``),
so it is also ``quantize_(model, "sparse24")``, and quantize_'s machinery serves it: the same
:class:`lowbit.ConvertSummary` (``model.lowbit_summary``), ``save_quantized`` / ``load_quantized``,
``torch.compile``.
"""

from typing import Callable, Optional

import torch

from .. import _C

#: ``SemiSparseWeightConfig()``: per-row 2:4 weights (the 2 largest magnitudes of every group of 4
#: along a row), stored as ``values`` (N, K/2) in the weight's dtype and ``meta`` uint8 (N, K/8)
#: (``lowbit.core.compress_2_4``). Layers whose in_features is not a multiple of 8 are skipped with
#: that reason. The linear runs ``torch.ops.lowbit.semi_sparse_weight_linear`` (CPU: the reference;
#: CUDA: cuSPARSELt, bfloat16 / float16).
SemiSparseWeightConfig = _C.SemiSparseWeightConfig


def sparsify_(
    model: torch.nn.Module,
    config=None,
    filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
) -> torch.nn.Module:
    """Prunes the weights of the selected ``nn.Linear`` layers of ``model`` to 2:4 in place and
    stores them compressed; returns ``model``. ``config``: ``SemiSparseWeightConfig()`` (the
    default) or its shorthand ``"sparse24"``. ``filter_fn(module, fqn) -> bool`` selects layers (all
    by default). ``model.lowbit_summary`` says what was converted and what was skipped and why (the
    same summary as C++ ``lowbit::sparse::sparsify_``). All-or-nothing: an error changes nothing."""
    from ..inference.config import as_config
    from ..inference.quantize import quantize_

    config = as_config(config if config is not None else SemiSparseWeightConfig())
    if config.kind != "SemiSparseWeightConfig":
        raise ValueError(f"sparsify_: config must be a sparsity config (SemiSparseWeightConfig), got {config!r}; "
                         "quantized formats go through lowbit.quantize_")
    return quantize_(model, config, filter_fn=filter_fn)


__all__ = ["SemiSparseWeightConfig", "sparsify_"]
