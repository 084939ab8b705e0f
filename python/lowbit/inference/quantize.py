"""quantize_: replace the weights of selected nn.Linear layers with QuantizedTensor weights."""

import logging
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

from .. import _C
from .config import QuantizeConfig, as_config
from .quantized_tensor import QuantizedTensor

log = logging.getLogger("lowbit.inference")


def _excluded(fqn: str, prefixes: Sequence[str]) -> Optional[str]:
    for p in prefixes:
        if fqn == p or fqn.startswith(p + "."):
            return p
    return None


def selected_linears(
    model: torch.nn.Module,
    filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
    modules_to_not_convert: Optional[Sequence[str]] = None,
) -> List[Tuple[str, torch.nn.Linear]]:
    """The ``nn.Linear`` layers of ``model`` that quantize_ and autoquant may change, as (fqn, module):
    not yet quantized, not under a ``modules_to_not_convert`` prefix, accepted by ``filter_fn``."""
    prefixes = list(modules_to_not_convert or [])
    out = []
    for fqn, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        label = fqn or "<root>"
        if isinstance(mod.weight, QuantizedTensor):
            log.info("quantize_: skipping %s (already quantized as %s)", label, mod.weight.config_name)
            continue
        prefix = _excluded(fqn, prefixes)
        if prefix is not None:
            log.info("quantize_: skipping %s (in modules_to_not_convert: %r)", label, prefix)
            continue
        if filter_fn is not None and not filter_fn(mod, fqn):
            continue
        out.append((fqn, mod))
    return out


def install_quantized(plan: Sequence[Tuple[torch.nn.Linear, QuantizedTensor]], device=None) -> None:
    """Replaces each layer's weight with its QuantizedTensor (biases follow to ``device`` if given).
    Callers quantize every weight first, so nothing changes when quantizing fails."""
    for mod, qweight in plan:
        mod.weight = torch.nn.Parameter(qweight, requires_grad=False)
        if device is not None and mod.bias is not None:
            mod.bias = torch.nn.Parameter(mod.bias.detach().to(device), requires_grad=mod.bias.requires_grad)


def quantize_(
    model: torch.nn.Module,
    config: Union[str, QuantizeConfig],
    *,
    filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
    modules_to_not_convert: Optional[Sequence[str]] = None,
    device: Optional[Union[str, torch.device]] = None,
) -> torch.nn.Module:
    """Quantizes the weights of the selected ``nn.Linear`` layers of ``model`` in place; returns ``model``.

    ``config``: a config (``Int4WeightOnlyConfig(group_size=128)``, ...) or a shorthand (``"int4wo"``,
    ``"int8dq"``, ``"float8dq_e4m3_row"``, ``"fp6_e3m2"``, ...; an unknown one is a ValueError listing
    the valid names). ``filter_fn(module, fqn) -> bool`` and ``modules_to_not_convert`` (qualified-name
    prefixes, as in diffusers) select layers; layers whose shape the format cannot take are logged
    and left alone. ``device``: quantize layer by layer on that device (each weight moves there just
    before it is quantized, so peak memory stays low); the quantized layers then live there.
    All-or-nothing: every weight is quantized before any is replaced, so an error changes nothing.
    """
    config = as_config(config)
    name = config.name
    plan: List[Tuple[torch.nn.Linear, QuantizedTensor]] = []
    for fqn, mod in selected_linears(model, filter_fn, modules_to_not_convert):
        reason = _C.quantize_unsupported_reason(config, mod.out_features, mod.in_features, mod.weight.dtype)
        if reason is not None:
            log.info("quantize_: skipping %s (%s)", fqn or "<root>", reason)
            continue
        weight = mod.weight.detach()
        if device is not None:
            weight = weight.to(device)
        plan.append((mod, QuantizedTensor.from_float(weight, name)))
        del weight
    install_quantized(plan, device)
    log.info("quantize_: %d linear layers quantized as %s", len(plan), name)
    return model


__all__ = ["quantize_", "selected_linears", "install_quantized"]
