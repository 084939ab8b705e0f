"""convert_to_float8_training: swap the selected nn.Linear modules of a model for Float8Linear."""

from typing import Callable, List, Optional, Tuple

import torch

from .. import _C
from .._convert import finish, linear_method
from .config import Float8LinearConfig
from .float8_linear import Float8Linear


def convert_to_float8_training(
    model: torch.nn.Module,
    *,
    config: Optional[Float8LinearConfig] = None,
    module_filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
) -> torch.nn.Module:
    """Swaps every selected ``nn.Linear`` of ``model`` for :class:`Float8Linear` and returns the model.

    Layers are selected by the C++ rule (``lowbit::float8::float8_skip_reason``, shared with the C++
    face): ``module_filter_fn(module, fqn) -> bool`` (all by default), plain ``nn.Linear`` only, in/out
    features multiples of 16 unless ``config.pad_inner_dim``; skipped layers are reported (a warning,
    and ``model.lowbit_summary``). Without ``config.emulate`` every converted layer must sit on a GPU
    with fp8 tensor cores (sm_89+); otherwise this raises and suggests ``emulate=True``.
    All-or-nothing: on error the model is unchanged.
    """
    config = config if config is not None else Float8LinearConfig()
    config.validate()
    swaps: List[Tuple[str, torch.nn.Linear]] = []
    skipped: List[Tuple[str, str]] = []
    for fqn, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        method, _ = linear_method(mod)
        accepts = module_filter_fn is None or bool(module_filter_fn(mod, fqn))
        try:
            reason = _C.float8_skip_reason(fqn, method, accepts, mod.in_features, mod.out_features,
                                           str(mod.weight.device), config)
        except ValueError as e:
            raise RuntimeError(str(e)) from None
        if reason is not None:
            skipped.append((fqn, reason))
            continue
        swaps.append((fqn, mod))

    new_modules = [(fqn, Float8Linear.from_float(mod, config)) for fqn, mod in swaps]
    label = f"float8_{config.recipe}"
    converted = [f"{fqn} ({label})" for fqn, _ in new_modules]
    if any(fqn == "" for fqn, _ in new_modules):
        model = new_modules[0][1]
    else:
        for fqn, new in new_modules:
            parent_name, _, child = fqn.rpartition(".")
            setattr(model.get_submodule(parent_name), child, new)
    finish(model, converted, skipped, "convert_to_float8_training")
    return model
