"""convert_to_float8_training: swap the selected nn.Linear modules of a model for Float8Linear."""

import logging
from typing import Callable, List, Optional, Tuple

import torch

from .config import Float8LinearConfig
from .float8_linear import Float8Linear

log = logging.getLogger("lowbit.float8")


def _fp8_gemm_available(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


def convert_to_float8_training(
    model: torch.nn.Module,
    *,
    config: Optional[Float8LinearConfig] = None,
    module_filter_fn: Optional[Callable[[torch.nn.Module, str], bool]] = None,
) -> torch.nn.Module:
    """Swaps every selected ``nn.Linear`` of ``model`` for :class:`Float8Linear` and returns the model.

    ``module_filter_fn(module, fqn) -> bool`` selects layers (all by default). Linears whose
    in/out features are not multiples of 16 are left alone and logged, unless
    ``config.pad_inner_dim``. Without ``config.emulate`` every selected layer must sit on a GPU
    with fp8 tensor cores (sm_89+); otherwise this raises and suggests ``emulate=True``.
    All-or-nothing: on error the model is unchanged.
    """
    config = config if config is not None else Float8LinearConfig()
    config.validate()
    swaps: List[Tuple[str, torch.nn.Linear]] = []
    for fqn, mod in model.named_modules():
        if type(mod) is not torch.nn.Linear:  # subclasses (Float8Linear, quantized linears) stay as they are
            continue
        if module_filter_fn is not None and not module_filter_fn(mod, fqn):
            continue
        if not config.pad_inner_dim and (mod.in_features % 16 or mod.out_features % 16):
            log.info("float8: skipping %s (in_features=%d, out_features=%d are not multiples of 16; set "
                     "pad_inner_dim=True to convert it anyway)", fqn or "<root>", mod.in_features, mod.out_features)
            continue
        if not config.emulate and not _fp8_gemm_available(mod.weight.device):
            raise RuntimeError(
                f"convert_to_float8_training: layer '{fqn or '<root>'}' is on {mod.weight.device}, which has no fp8 "
                "GEMM (needs a CUDA GPU with compute capability 8.9+); use Float8LinearConfig(emulate=True) or move "
                "the model to such a GPU first")
        swaps.append((fqn, mod))

    new_modules = [(fqn, Float8Linear.from_float(mod, config)) for fqn, mod in swaps]
    if any(fqn == "" for fqn, _ in new_modules):
        return new_modules[0][1]
    for fqn, new in new_modules:
        parent_name, _, child = fqn.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
        log.debug("float8: converted %s", fqn)
    return model
