"""prepare / convert: swap nn.Linear for FakeQuantizedLinear, then for the real quantized linear."""

from typing import Callable, Optional, Tuple, Union

import torch

from ..inference import Int4WeightOnlyConfig, Int8DynamicActivationInt4WeightConfig
from ..inference.quantized_tensor import QuantizedTensor
from .config import FakeQuantizeConfig, Int4WeightOnlyQATConfig, Int8DynActInt4WeightQATConfig
from .linear import FakeQuantizedLinear


def _resolve(config) -> Tuple[Optional[FakeQuantizeConfig], Optional[FakeQuantizeConfig], object]:
    if isinstance(config, Int8DynActInt4WeightQATConfig):
        return (*config.fake_quantize_configs(), Int8DynamicActivationInt4WeightConfig(config.group_size))
    if isinstance(config, Int4WeightOnlyQATConfig):
        return (*config.fake_quantize_configs(), Int4WeightOnlyConfig(config.group_size))
    if isinstance(config, tuple) and len(config) == 2:
        act, weight = config
        return act, weight, None  # no quantize_ config matches an arbitrary pair: convert() refuses
    raise TypeError("qat.prepare: config must be Int8DynActInt4WeightQATConfig, Int4WeightOnlyQATConfig or a pair "
                    f"(activation FakeQuantizeConfig or None, weight FakeQuantizeConfig), got {config!r}")


def _swap(model: torch.nn.Module, fqn: str, new: torch.nn.Module) -> torch.nn.Module:
    if fqn == "":
        return new
    parent, _, child = fqn.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    return model


def prepare(model: torch.nn.Module, config: Union[Int8DynActInt4WeightQATConfig, Int4WeightOnlyQATConfig, tuple],
            *, filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None) -> torch.nn.Module:
    """Swaps each selected plain ``nn.Linear`` for a :class:`FakeQuantizedLinear` (same parameter
    objects, so optimizers keep working); returns the model."""
    act, weight, target = _resolve(config)
    swaps = [(fqn, m) for fqn, m in model.named_modules()
             if type(m) is torch.nn.Linear and (filter_fn is None or filter_fn(m, fqn))]
    for fqn, mod in swaps:
        model = _swap(model, fqn, FakeQuantizedLinear.from_linear(mod, act, weight, target))
    return model


def convert(model: torch.nn.Module) -> torch.nn.Module:
    """Turns every FakeQuantizedLinear into an ``nn.Linear`` with a quantized weight of the matching
    quantize_ config; the result computes what the fake-quant forward computed. Returns the model."""
    swaps = [(fqn, m) for fqn, m in model.named_modules() if isinstance(m, FakeQuantizedLinear)]
    for fqn, mod in swaps:
        if mod.convert_to is None:
            raise ValueError(f"qat.convert: '{fqn}' was prepared with a custom FakeQuantizeConfig pair, which no "
                             "quantize_ config implements; prepare with Int8DynActInt4WeightQATConfig or "
                             "Int4WeightOnlyQATConfig")
    for fqn, mod in swaps:
        with torch.device("meta"):
            new = torch.nn.Linear(mod.in_features, mod.out_features, mod.bias is not None)
        new.weight = torch.nn.Parameter(QuantizedTensor.from_float(mod.weight.detach(), mod.convert_to.name),
                                        requires_grad=False)
        new.bias = None if mod.bias is None else torch.nn.Parameter(mod.bias.detach(), requires_grad=False)
        model = _swap(model, fqn, new)
    return model
