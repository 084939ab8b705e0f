"""quantize_: replace the weights of selected nn.Linear layers with QuantizedTensor weights."""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

from .. import _C
from .._convert import check_names, finish, linear_method
from .config import QuantizeConfig, as_config
from .quantized_tensor import QuantizedTensor


def selected_linears(
    model: torch.nn.Module,
    filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
    modules_to_not_convert: Optional[Sequence[str]] = None,
    skipped: Optional[List[Tuple[str, str]]] = None,
) -> List[Tuple[str, torch.nn.Linear]]:
    """The ``nn.Linear`` layers of ``model`` that quantize_ and autoquant may change, as (fqn, module),
    by the C++ selection rule (``lowbit::inference::selection_skip_reason``): not under a
    ``modules_to_not_convert`` prefix, accepted by ``filter_fn``, plain (not quantized or converted
    to another method). Layers left out are appended to ``skipped`` with the reason."""
    names = check_names(modules_to_not_convert, "quantize_")
    out = []
    for fqn, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        method, quantized = linear_method(mod)
        accepts = filter_fn is None or bool(filter_fn(mod, fqn))
        reason = _C.selection_skip_reason(fqn, method, quantized, accepts, names)
        if reason is None:
            out.append((fqn, mod))
        elif skipped is not None:
            skipped.append((fqn, reason))
    return out


def install_quantized(plan: Sequence[Tuple[torch.nn.Linear, QuantizedTensor]], device=None) -> None:
    """Replaces each layer's weight with its QuantizedTensor (biases follow to ``device`` if given).
    Callers quantize every weight first, so nothing changes when quantizing fails."""
    biases = [None if mod.bias is None or device is None else mod.bias.detach().to(device) for mod, _ in plan]
    for (mod, qweight), bias in zip(plan, biases):
        mod.weight = torch.nn.Parameter(qweight, requires_grad=False)
        if bias is not None:
            mod.bias = torch.nn.Parameter(bias, requires_grad=mod.bias.requires_grad)


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
    the valid names). ``filter_fn(module, fqn) -> bool`` and ``modules_to_not_convert`` (a list of
    qualified-name prefixes, as in diffusers) select layers; layers whose shape or dtype the format
    cannot take, and layers already quantized or converted to another method, are left alone and
    reported in a warning. ``device``: quantize layer by layer on that device (each weight moves
    there just before it is quantized, so peak memory stays low); the quantized layers then live there.
    ``model.lowbit_summary`` is the :class:`lowbit.ConvertSummary` (converted, skipped and why), the
    same one C++'s ``lowbit::inference::quantize_`` returns. All-or-nothing: every weight is quantized
    before any is replaced, so an error changes nothing.
    """
    config = as_config(config)
    skipped: List[Tuple[str, str]] = []
    plan: List[Tuple[torch.nn.Linear, QuantizedTensor]] = []
    converted: List[str] = []
    for fqn, mod in selected_linears(model, filter_fn, modules_to_not_convert, skipped):
        reason = _C.quantize_unsupported_reason(config, mod.out_features, mod.in_features, mod.weight.dtype)
        if reason is not None:
            skipped.append((fqn, reason))
            continue
        weight = mod.weight.detach()
        if device is not None:
            weight = weight.to(device)
        plan.append((mod, QuantizedTensor.from_float(weight, config)))
        converted.append(f"{fqn} ({config.name})")
        del weight
    install_quantized(plan, device)
    finish(model, converted, skipped, "quantize_")
    return model


__all__ = ["quantize_", "selected_linears", "install_quantized"]
