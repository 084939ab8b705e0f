"""Swapping nn.Linear layers for their 2:4 training versions and back."""

import logging
from typing import Callable, Dict, List, Optional, Tuple, Type

import torch

from .. import _C
from .config import SemiSparseTrainingConfig
from .linear import _CLASS_OF, SemiSparseActivationLinear, SemiSparseLinear, _SemiSparseBase

log = logging.getLogger("lowbit.sparse")

#: What a convert function changed and what it left alone and why (the C++ ``lowbit::nn::ConvertSummary``):
#: ``converted`` (``"fqn (method)"`` strings), ``skipped`` (``(fqn, reason)`` pairs); ``str()`` prints one line each.
ConvertSummary = _C.ConvertSummary


def measured_speedups() -> List[dict]:
    """The layer shapes measured faster with 2:4 than dense bf16 on a GPU (``sparse/speed_table.cpp``,
    filled from ``benchmarks/bench_sparse.py``); the default filter converts only these. Empty until a
    GPU run fills it."""
    return _C.semi_sparse_measured_speedups()


def dense_after_step(total_steps: int, dense_after_fraction: float) -> int:
    """A sparse-then-dense schedule over ``total_steps``: the step (0-based) at which training turns
    dense, ``round(dense_after_fraction * total_steps)`` (at least 1), or ``total_steps`` (never) for a
    fraction of 1. The fraction must be in (0, 1]. Switch with
    ``swap_semi_sparse_linear_with_linear(model, prune_weights=True)``."""
    return _C.semi_sparse_dense_after_step(total_steps, dense_after_fraction)


def _replace(model: torch.nn.Module, plan: List[Tuple[str, torch.nn.Module]]) -> None:
    for fqn, new in plan:
        parent, _, child = fqn.rpartition(".")
        setattr(model.get_submodule(parent), child, new)


def convert_to_semi_sparse_training(
    model: torch.nn.Module,
    *,
    config: Optional[SemiSparseTrainingConfig] = None,
    module_filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
) -> ConvertSummary:
    """Swaps the selected plain ``nn.Linear`` layers of ``model`` (in place) for
    :class:`SemiSparseLinear` (``config.target == "weight"``, the default) or
    :class:`SemiSparseActivationLinear` (``"activation"``), sharing their parameters; returns a
    :class:`ConvertSummary` of what was converted and what was skipped and why.

    Selection: ``module_filter_fn(module, fqn) -> bool`` when given; otherwise the default filter,
    which converts only shapes measured faster than dense on a GPU (:func:`measured_speedups`, empty
    until a GPU run fills it, so by default nothing converts). Either way the 2:4 ops' shape rule
    applies (CPU: multiples of 4; CUDA: multiples of 128), decided in C++
    (``lowbit::sparse::semi_sparse_skip_reason``) for both faces. The root module itself cannot be
    swapped in place (use ``SemiSparseLinear.from_dense``). All-or-nothing: on error the model is unchanged.
    """
    config = config if config is not None else SemiSparseTrainingConfig()
    config.validate()
    cls = _CLASS_OF[config.target]
    label = f"semi_sparse_{config.target}"
    converted: List[str] = []
    skipped: List[Tuple[str, str]] = []
    plan: List[Tuple[str, torch.nn.Module]] = []
    for fqn, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        name = fqn or "<root>"
        if module_filter_fn is not None and not module_filter_fn(mod, fqn):
            skipped.append((fqn, "excluded by the filter"))
            continue
        if isinstance(mod, _SemiSparseBase):
            skipped.append((fqn, "already semi-sparse"))
            continue
        if type(mod) is not torch.nn.Linear:
            skipped.append((fqn, f"is a {type(mod).__name__}; 2:4 replaces plain nn.Linear only"))
            continue
        reason = _C.semi_sparse_skip_reason(config, mod.out_features, mod.in_features, mod.weight.device.type,
                                            module_filter_fn is not None)
        if reason is None and fqn == "":
            reason = "the root module cannot be swapped in place; use SemiSparseLinear.from_dense(model)"
        if reason is not None:
            skipped.append((fqn, reason))
            log.info("sparse: skipping %s (%s)", name, reason)
            continue
        plan.append((fqn, cls.from_dense(mod, config)))
        converted.append(f"{fqn} ({label})")
    _replace(model, plan)
    return ConvertSummary(converted, skipped)


def swap_linear_with_semi_sparse_linear(
    model: torch.nn.Module, config: Dict[str, Type[torch.nn.Linear]]
) -> torch.nn.Module:
    """torchao's call: ``config`` maps module names to :class:`SemiSparseLinear` or
    :class:`SemiSparseActivationLinear`; each named ``nn.Linear`` is swapped (in place, parameters
    shared) for that class with its default config. A name that is missing, not a plain
    ``nn.Linear``, or whose shape the 2:4 ops cannot take is a ``ValueError`` naming it, and nothing
    changes. Returns ``model``."""
    plan: List[Tuple[str, torch.nn.Module]] = []
    modules = dict(model.named_modules())
    for fqn, cls in config.items():
        if not (isinstance(cls, type) and issubclass(cls, (SemiSparseLinear, SemiSparseActivationLinear))):
            raise ValueError(f"swap_linear_with_semi_sparse_linear: '{fqn}' maps to {cls!r}; allowed: "
                             "SemiSparseLinear, SemiSparseActivationLinear")
        mod = modules.get(fqn)
        if mod is None or fqn == "":
            raise ValueError(f"swap_linear_with_semi_sparse_linear: the model has no submodule '{fqn}'")
        if type(mod) is not torch.nn.Linear:
            raise ValueError(f"swap_linear_with_semi_sparse_linear: '{fqn}' is a {type(mod).__name__}, not a plain "
                             "nn.Linear")
        reason = _C.semi_sparse_unsupported_reason(mod.out_features, mod.in_features, mod.weight.device.type,
                                                   cls._target == "activation")
        if reason is not None:
            raise ValueError(f"swap_linear_with_semi_sparse_linear: '{fqn}' cannot train with 2:4 sparsity: {reason}")
        plan.append((fqn, cls.from_dense(mod)))
    _replace(model, plan)
    return model


def swap_semi_sparse_linear_with_linear(model: torch.nn.Module, *, prune_weights: bool = False) -> torch.nn.Module:
    """The reverse swap: every :class:`SemiSparseLinear` / :class:`SemiSparseActivationLinear` in
    ``model`` becomes a plain ``nn.Linear`` sharing its parameters, e.g. for the dense phase of a
    sparse-then-dense schedule. The weights are the dense master weights as they are, or with
    ``prune_weights`` the weights the sparse forward used (``W⊙M`` written into each weight-sparse
    layer's master weight): the model then computes the same function right after the switch and
    the pruned entries regrow from zero (what the recipes' ``sparse.dense_after_fraction`` does).
    Returns ``model`` (or the new module when ``model`` itself was semi-sparse)."""
    if isinstance(model, _SemiSparseBase):
        return model.to_dense(prune_weights=prune_weights)
    plan = [(fqn, mod.to_dense(prune_weights=prune_weights)) for fqn, mod in model.named_modules()
            if isinstance(mod, _SemiSparseBase)]
    _replace(model, plan)
    return model


__all__ = [
    "ConvertSummary",
    "convert_to_semi_sparse_training",
    "dense_after_step",
    "measured_speedups",
    "swap_linear_with_semi_sparse_linear",
    "swap_semi_sparse_linear_with_linear",
]
