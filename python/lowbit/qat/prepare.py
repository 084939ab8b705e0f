"""prepare / convert: swap nn.Linear for FakeQuantizedLinear, then for the real quantized linear."""

from typing import Callable, List, Optional, Tuple, Union

import torch

from .. import _C
from .._convert import finish, linear_method
from ..inference.quantized_tensor import QuantizedTensor
from .config import FakeQuantizeConfig, QATConfig
from .linear import FakeQuantizedLinear


def _as_qat_config(config) -> QATConfig:
    if isinstance(config, QATConfig):
        return config
    if isinstance(config, tuple) and len(config) == 2 and (config[0] is None or isinstance(
            config[0], FakeQuantizeConfig)) and isinstance(config[1], FakeQuantizeConfig):
        return QATConfig(config[0], config[1])  # no quantize_ config matches an arbitrary pair: convert() refuses
    raise TypeError("qat.prepare: config must be a QATConfig (Int8DynActInt4WeightQATConfig(...), "
                    "Int4WeightOnlyQATConfig(...)) or a pair (activation FakeQuantizeConfig or None, weight "
                    f"FakeQuantizeConfig), got {config!r}")


def _swap(model: torch.nn.Module, fqn: str, new: torch.nn.Module) -> torch.nn.Module:
    if fqn == "":
        return new
    parent, _, child = fqn.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    return model


def prepare(model: torch.nn.Module, config: Union[QATConfig, Tuple], *,
            filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None) -> torch.nn.Module:
    """Swaps each selected plain ``nn.Linear`` for a :class:`FakeQuantizedLinear` (same parameter
    objects, so optimizers keep working); returns the model.

    Layers are selected by the C++ rule (``lowbit::qat::prepare_skip_reason``): accepted by
    ``filter_fn(module, fqn)``, plain, and of a shape and dtype the target format can take (others
    are left alone and reported). ``model.lowbit_summary`` holds what was converted and skipped.
    """
    config = _as_qat_config(config)
    swaps: List[Tuple[str, torch.nn.Linear]] = []
    converted, skipped = [], []
    for fqn, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        method, quantized = linear_method(mod)
        accepts = filter_fn is None or bool(filter_fn(mod, fqn))
        reason = _C.qat_prepare_skip_reason(fqn, method, quantized, accepts, config, mod.out_features,
                                            mod.in_features, str(mod.weight.dtype).replace("torch.", ""))
        if reason is not None:
            skipped.append((fqn, reason))
            continue
        swaps.append((fqn, mod))
        converted.append(f"{fqn} ({config.method_name})")
    new_modules = [(fqn, FakeQuantizedLinear.from_linear(mod, config)) for fqn, mod in swaps]
    for fqn, new in new_modules:
        model = _swap(model, fqn, new)
    finish(model, converted, skipped, "qat.prepare")
    return model


def convert(model: torch.nn.Module) -> torch.nn.Module:
    """Turns every FakeQuantizedLinear into an ``nn.Linear`` with a quantized weight of its config's
    quantize_ format; the result computes what the fake-quant forward computed. Returns the model.
    All-or-nothing: every weight is quantized before any module is swapped, so an error (a custom
    config pair, a weight the format cannot take) leaves the model as it was."""
    swaps = [(fqn, m) for fqn, m in model.named_modules() if isinstance(m, FakeQuantizedLinear)]
    for fqn, mod in swaps:
        if mod.convert_to is None:
            raise ValueError(f"qat.convert: '{fqn or '<root>'}' was prepared with a custom FakeQuantizeConfig pair, "
                             "which no quantize_ config implements; prepare with Int8DynActInt4WeightQATConfig or "
                             "Int4WeightOnlyQATConfig; the model was not changed")
    new_modules = []
    for fqn, mod in swaps:
        qweight = QuantizedTensor.from_float(mod.weight.detach(), mod.convert_to)
        with torch.device("meta"):
            new = torch.nn.Linear(mod.in_features, mod.out_features, mod.bias is not None)
        new.weight = torch.nn.Parameter(qweight, requires_grad=False)
        new.bias = None if mod.bias is None else torch.nn.Parameter(mod.bias.detach(), requires_grad=False)
        new_modules.append((fqn, new))
    for fqn, new in new_modules:
        model = _swap(model, fqn, new)
    finish(model, [f"{fqn} ({new.weight.config_name})" for fqn, new in new_modules], [], "qat.convert")
    return model
