"""autoquant: each linear gets the quantize_ config that is fastest on the shapes it really sees.

    plan = lowbit.autoquant(model, (tokens,))                    # record, time, choose, apply
    plan.save("plan.json")
    lowbit.autoquant(other_model, None, plan="plan.json")        # later runs skip the timing

Recording uses forward pre-hooks; the timing loop, the SQNR check and the plan format are the C++
ones (``torch.ops.lowbit.autoquant_layer`` and ``lowbit._C.AutoquantPlan``), shared with
``lowbit::inference::autoquant``.
"""

import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .. import _C
from .config import as_config, parse_quantize_config
from .quantize import install_quantized, selected_linears
from .quantized_tensor import QuantizedTensor

log = logging.getLogger("lowbit.inference")

AutoquantPlan = _C.AutoquantPlan


class _Recorder:
    """One real input per distinct row count, and how many calls had that row count."""

    def __init__(self):
        self.inputs: List[torch.Tensor] = []
        self.counts: List[int] = []
        self._rows: List[int] = []

    def __call__(self, module, args):
        x = args[0]
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        if rows in self._rows:
            self.counts[self._rows.index(rows)] += 1
        else:
            self._rows.append(rows)
            self.inputs.append(x.detach().clone())
            self.counts.append(1)


def _run(model: torch.nn.Module, example_inputs: Any) -> None:
    if isinstance(example_inputs, dict):
        model(**example_inputs)
    elif isinstance(example_inputs, (tuple, list)):
        model(*example_inputs)
    else:
        model(example_inputs)


def _as_plan(plan: Union[str, os.PathLike, "AutoquantPlan"]) -> "AutoquantPlan":
    if isinstance(plan, AutoquantPlan):
        return plan
    if isinstance(plan, (str, os.PathLike)):
        return AutoquantPlan.load(os.fspath(plan))
    raise TypeError(f"plan must be an AutoquantPlan or a path to a saved one, got {type(plan).__name__}")


def autoquant(
    model: torch.nn.Module,
    example_inputs: Any,
    candidates: Optional[Sequence[str]] = None,
    min_sqnr: Optional[float] = None,
    *,
    plan: Optional[Union[str, os.PathLike, "AutoquantPlan"]] = None,
    filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
    modules_to_not_convert: Optional[Sequence[str]] = None,
    include_unquantized: bool = True,
    warmup: int = 2,
    iters: int = 10,
) -> "AutoquantPlan":
    """Quantizes each selected ``nn.Linear`` of ``model`` with the config that runs fastest on it; returns the plan.

    ``example_inputs`` (a tuple of positional args, a dict of keyword args, or one tensor) drives one
    no-grad forward that records each layer's input shapes. Every config of ``candidates`` (shorthands
    or configs; default ``lowbit._C.default_autoquant_candidates()``) is then timed per layer on those
    shapes, and with ``include_unquantized`` the float layer competes too. The fastest whose output SQNR
    against the float layer is at least ``min_sqnr`` dB (if given) is applied. ``plan`` (an
    :class:`AutoquantPlan` or a path to one saved with ``plan.save(path)``) skips recording and timing
    and applies that plan. Layers the example never calls stay as they are. All-or-nothing like
    quantize_: an error leaves the model unchanged.
    """
    if plan is not None:
        plan = _as_plan(plan)
        apply_autoquant_plan(model, plan)
        return plan
    if candidates is not None:
        names = [as_config(c).name for c in candidates]
        if not names:
            raise ValueError("autoquant: candidates is empty; pass None for the defaults "
                             f"{list(_C.default_autoquant_candidates())}")
    else:
        names = []  # the C++ default list
    layers = selected_linears(model, filter_fn, modules_to_not_convert)
    recorders = {fqn: _Recorder() for fqn, _ in layers}
    hooks = [mod.register_forward_pre_hook(recorders[fqn]) for fqn, mod in layers]
    try:
        with torch.no_grad():
            _run(model, example_inputs)
    finally:
        for h in hooks:
            h.remove()
    layer_jsons = []
    for fqn, mod in layers:
        rec = recorders[fqn]
        if not rec.inputs:
            continue  # not called by the example
        bias = None if mod.bias is None else mod.bias.detach()
        layer_jsons.append(torch.ops.lowbit.autoquant_layer(
            fqn, mod.weight.detach(), bias, rec.inputs, rec.counts, names, min_sqnr, include_unquantized,
            warmup, iters))
    device = str(layers[0][1].weight.device) if layers else "cpu"
    result = _C.autoquant_plan_from_layers(device, min_sqnr, layer_jsons)
    apply_autoquant_plan(model, result)
    log.info("autoquant:\n%s", result)
    return result


def apply_autoquant_plan(model: torch.nn.Module, plan: Union[str, os.PathLike, "AutoquantPlan"]) -> torch.nn.Module:
    """Quantizes each layer of ``plan`` whose choice is not ``"none"``; returns ``model``.

    Every such layer must exist in ``model`` as a float ``nn.Linear`` of the plan's shape, else a
    ValueError names it and the model is left unchanged.
    """
    plan = _as_plan(plan)
    modules: Dict[str, torch.nn.Module] = dict(model.named_modules())
    todo: List[Tuple[torch.nn.Linear, str]] = []
    for layer in plan.layers:
        if layer.chosen == "none":
            continue
        mod = modules.get(layer.name)
        where = f"apply_autoquant_plan: '{layer.name}'"
        if not isinstance(mod, torch.nn.Linear):
            raise ValueError(f"{where} is quantized by the plan but the model has no nn.Linear of that name; "
                             "the model was not changed")
        if isinstance(mod.weight, QuantizedTensor):
            raise ValueError(f"{where} is already quantized ({mod.weight.config_name}); the model was not changed")
        if (mod.out_features, mod.in_features) != (layer.out_features, layer.in_features):
            raise ValueError(f"{where} is ({layer.out_features}, {layer.in_features}) in the plan, "
                             f"({mod.out_features}, {mod.in_features}) in the model; the model was not changed")
        config = parse_quantize_config(layer.chosen)
        reason = _C.quantize_unsupported_reason(config, mod.out_features, mod.in_features, mod.weight.dtype)
        if reason is not None:
            raise ValueError(f"{where} cannot take {layer.chosen}: {reason}; the model was not changed")
        todo.append((mod, layer.chosen))
    install_quantized([(mod, QuantizedTensor.from_float(mod.weight.detach(), name)) for mod, name in todo])
    return model


__all__ = ["AutoquantPlan", "autoquant", "apply_autoquant_plan"]
