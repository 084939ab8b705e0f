"""The optimizer state file shared with the C++ face (``lowbit::optim::save_state`` /
``load_state``): one safetensors file with tensors ``state.<i>.<name>`` (``i`` the parameter's
index over all groups in order, ``name`` one of step, exp_avg, exp_avg_scale, exp_avg_sq,
exp_avg_sq_scale) and the hyperparameters in ``__metadata__`` (format: optim/state_file.h).
"""

from itertools import chain
from typing import Dict

import torch
from safetensors.torch import load_file, save_file

from .adamw import _STATE_KEYS, _AdamWLowBit

_FORMAT = "lowbit.optim/1"
_FLOAT_KEYS = ("lr", "eps", "weight_decay")
_INT_KEYS = ("block_size", "min_quantized_size")


def save_state(optimizer: _AdamWLowBit, path: str) -> None:
    """Writes the optimizer's state and every group's hyperparameters to ``path``."""
    tensors: Dict[str, torch.Tensor] = {}
    metadata = {
        "format": _FORMAT,
        "optimizer": type(optimizer).__name__,
        "state_format": optimizer.state_format,
        "num_param_groups": str(len(optimizer.param_groups)),
    }
    index = 0
    for g, group in enumerate(optimizer.param_groups):
        indices = []
        for p in group["params"]:
            indices.append(str(index))
            state = optimizer.state.get(p)
            if state:
                for k in _STATE_KEYS:
                    tensors[f"state.{index}.{k}"] = state[k].detach().cpu().contiguous()
            index += 1
        prefix = f"param_groups.{g}."
        metadata[prefix + "params"] = ",".join(indices)
        for k in _FLOAT_KEYS:
            metadata[prefix + k] = repr(float(group[k]))  # repr round-trips a double exactly
        metadata[prefix + "beta1"] = repr(float(group["betas"][0]))
        metadata[prefix + "beta2"] = repr(float(group["betas"][1]))
        for k in _INT_KEYS:
            metadata[prefix + k] = str(int(group[k]))
        metadata[prefix + "bf16_stochastic_round"] = "true" if group["bf16_stochastic_round"] else "false"
    save_file(tensors, path, metadata=metadata)


def _meta(metadata: Dict[str, str], key: str, path: str) -> str:
    if key not in metadata:
        raise ValueError(f"lowbit.optim.load_state: '{path}' has no metadata '{key}' (not written by save_state?)")
    return metadata[key]


def load_state(optimizer: _AdamWLowBit, path: str) -> None:
    """Restores what ``save_state`` (of either face) wrote into an optimizer over the same
    parameters: same groups and sizes, same state format. States are checked against the
    parameters (shape, dtype, size) and moved to their devices; hyperparameters are restored.
    The optimizer is changed only when everything fits."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    tensors = load_file(path)
    if _meta(metadata, "format", path) != _FORMAT:
        raise ValueError(f"lowbit.optim.load_state: '{path}' has format '{metadata['format']}', expected '{_FORMAT}'")
    if _meta(metadata, "state_format", path) != optimizer.state_format:
        raise ValueError(
            f"lowbit.optim.load_state: '{path}' holds a '{metadata.get('state_format')}' state "
            f"({metadata.get('optimizer')}) but the optimizer is {type(optimizer).__name__} "
            f"('{optimizer.state_format}')"
        )
    num_groups = int(_meta(metadata, "num_param_groups", path))
    if num_groups != len(optimizer.param_groups):
        raise ValueError(
            f"lowbit.optim.load_state: '{path}' has {num_groups} parameter groups "
            f"but the optimizer has {len(optimizer.param_groups)}"
        )
    new_groups = []
    new_state = {}
    index = 0
    for g, group in enumerate(optimizer.param_groups):
        prefix = f"param_groups.{g}."
        expected = ",".join(str(index + k) for k in range(len(group["params"])))
        saved = _meta(metadata, prefix + "params", path)
        if saved != expected:
            raise ValueError(
                f"lowbit.optim.load_state: group {g} of '{path}' holds parameters [{saved}] but the "
                f"optimizer's group {g} has {len(group['params'])} parameters ([{expected}])"
            )
        hyper = {k: float(_meta(metadata, prefix + k, path)) for k in _FLOAT_KEYS}
        hyper["betas"] = (float(_meta(metadata, prefix + "beta1", path)), float(_meta(metadata, prefix + "beta2", path)))
        for k in _INT_KEYS:
            hyper[k] = int(_meta(metadata, prefix + k, path))
        hyper["bf16_stochastic_round"] = _meta(metadata, prefix + "bf16_stochastic_round", path) == "true"
        new_groups.append(hyper)
        for p in group["params"]:
            if f"state.{index}.step" in tensors:
                state = {}
                for k in _STATE_KEYS:
                    key = f"state.{index}.{k}"
                    if key not in tensors:
                        raise ValueError(f"lowbit.optim.load_state: '{path}' lacks tensor '{key}'")
                    state[k] = tensors[key].to(p.device)
                _check_fits(optimizer, p, index, state, hyper, path)
                new_state[p] = state
            index += 1
    for group, hyper in zip(optimizer.param_groups, new_groups):
        group.update(hyper)
    optimizer.state.clear()
    optimizer.state.update(new_state)


def _check_fits(optimizer: _AdamWLowBit, p: torch.Tensor, index: int, state, hyper, path: str) -> None:
    # A fresh state of the saved format and block size, fp32 or quantized as the saved one is,
    # has the layout the loaded one must have.
    min_size = 0 if state["exp_avg"].dtype != torch.float32 else p.numel() + 1
    fresh = torch.ops.lowbit.adamw_lowbit_init_state(p.detach(), optimizer.state_format, hyper["block_size"], min_size)
    for k, want in zip(_STATE_KEYS, fresh):
        got = state[k]
        if got.dtype != want.dtype or got.shape != want.shape:
            raise ValueError(
                f"lowbit.optim.load_state: state.{index}.{k} in '{path}' has dtype {got.dtype} and shape "
                f"{tuple(got.shape)}, but parameter {index} (shape {tuple(p.shape)}) needs {want.dtype} "
                f"and {tuple(want.shape)}"
            )
