"""What every Python convert function shares: the method label of a linear, the summary it returns
(the C++ ``lowbit::nn::ConvertSummary``, bound) and how skips are made visible."""

import warnings
from typing import List, Optional, Sequence, Tuple

import torch

from . import _C

ConvertSummary = _C.ConvertSummary

# Skips the caller asked for (no warning); every other skip is reported as a warning.
_REQUESTED = ("in modules_to_not_convert", "excluded by the filter")


def linear_method(mod: torch.nn.Module) -> Tuple[str, bool]:
    """(method label, holds a quantized weight) of an ``nn.Linear``: ``"plain"`` for ``nn.Linear``
    itself, the format's name for a quantized weight, else the class's ``lowbit_method``."""
    from .inference.quantized_tensor import QuantizedTensor

    if isinstance(mod.weight, QuantizedTensor):
        return mod.weight.config_name, True
    if type(mod) is torch.nn.Linear:
        return "plain", False
    return getattr(mod, "lowbit_method", type(mod).__name__), False


def check_names(modules_to_not_convert: Optional[Sequence[str]], where: str) -> List[str]:
    """``modules_to_not_convert`` as a list of names (a bare string is an error, not its characters)."""
    if modules_to_not_convert is None:
        return []
    if isinstance(modules_to_not_convert, (str, bytes)) or not all(
            isinstance(n, str) for n in modules_to_not_convert):
        raise TypeError(f"{where}: modules_to_not_convert must be a list of qualified module names (e.g. "
                        f"['lm_head']), got {modules_to_not_convert!r}")
    return list(modules_to_not_convert)


def finish(model: torch.nn.Module, converted: List[str], skipped: List[Tuple[str, str]], where: str) -> ConvertSummary:
    """Builds the summary, attaches it to ``model`` as ``lowbit_summary`` and warns about every skip
    the caller did not ask for (shape or dtype rules, layers already converted)."""
    summary = ConvertSummary(converted, skipped)
    model.lowbit_summary = summary
    unexpected = [(n, r) for n, r in skipped if not r.startswith(_REQUESTED)]
    if unexpected:
        lines = "; ".join(f"{n or '<root>'} ({r})" for n, r in unexpected)
        warnings.warn(f"{where}: left {len(unexpected)} linear layer(s) unchanged: {lines}", stacklevel=3)
    return summary
