"""The optimizer state file shared with the C++ face (``lowbit::optim::save_state`` /
``load_state``): one safetensors file, format ``lowbit.optim/1`` (optim/state_file.h). It is read
and written by the C++ reader and writer, reached through the dispatcher ops
``torch.ops.lowbit.optim_save_state`` / ``optim_load_state``; this module only translates between
the optimizer's ``param_groups`` / ``state`` and the ops' JSON manifest."""

import json
import os
from typing import Dict, List

import torch

from .adamw import _STATE_KEYS, _AdamWLowBit

_HYPER_KEYS = ("lr", "eps", "weight_decay", "block_size", "bf16_stochastic_round", "min_quantized_size")


def save_state(optimizer: _AdamWLowBit, path: str) -> None:
    """Writes the optimizer's state and every group's hyperparameters to ``path``."""
    groups: List[Dict] = []
    tensors: List[torch.Tensor] = []
    with_state: List[int] = []
    index = 0
    for group in optimizer.param_groups:
        entry = {"params": list(range(index, index + len(group["params"]))),
                 "lr": float(group["lr"]), "betas": [float(b) for b in group["betas"]],
                 "eps": float(group["eps"]), "weight_decay": float(group["weight_decay"]),
                 "block_size": int(group["block_size"]), "bf16_stochastic_round": bool(group["bf16_stochastic_round"]),
                 "min_quantized_size": int(group["min_quantized_size"])}  # fmt: skip
        groups.append(entry)
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state:
                with_state.append(index)
                tensors.extend(state[k].detach() for k in _STATE_KEYS)
            index += 1
    manifest = {"optimizer": type(optimizer).__name__, "state_format": optimizer.state_format,
                "param_groups": groups, "state": with_state}  # fmt: skip
    torch.ops.lowbit.optim_save_state(os.fspath(path), json.dumps(manifest), tensors)


def load_state(optimizer: _AdamWLowBit, path: str) -> None:
    """Restores what ``save_state`` (of either face) wrote into an optimizer over the same
    parameters: same groups and sizes, same state format. States are checked against the
    parameters (shape, dtype, layout) and moved to their devices; hyperparameters are restored.
    The optimizer is changed only when everything fits (else ValueError)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    manifest, tensors = torch.ops.lowbit.optim_load_state(
        os.fspath(path), optimizer.state_format, [p.detach() for p in params],
        [len(group["params"]) for group in optimizer.param_groups])  # fmt: skip
    manifest = json.loads(manifest)
    for group, saved in zip(optimizer.param_groups, manifest["param_groups"]):
        group.update({k: saved[k] for k in _HYPER_KEYS})
        group["betas"] = tuple(saved["betas"])
    optimizer.state.clear()
    for i, index in enumerate(manifest["state"]):
        optimizer.state[params[index]] = dict(zip(_STATE_KEYS, tensors[5 * i : 5 * i + 5]))
