"""save_quantized / load_quantized: quantized models as safetensors files (no pickle).

The file layout, its one writer and its one reader are C++ (``csrc/quant/file.h``, shared with
``lowbit::inference::save_quantized`` / ``load_quantized``), reached through the
``torch.ops.lowbit.write_quantized_file`` / ``read_quantized_file`` ops, which carry the tensors
plus a JSON manifest. Plain tensors are stored under their names; a quantized weight ``<name>``
as its named parts (``<name>.qdata``, ``<name>.scale``, ...) with its format, shape and dtype in
the file's metadata. This module only matches the file against a ``torch.nn.Module``.
"""

import json
from typing import Dict, List, Tuple

import torch

from .quantized_tensor import QuantizedTensor

_ops = torch.ops.lowbit


def save_quantized(model: torch.nn.Module, path: str) -> None:
    """Writes ``model.state_dict()`` (quantized weights as their parts plus metadata) to ``path``.

    Tensors shared by several names (tied weights) are written under each name. A directory path,
    or an unwritable one, is an error and leaves no file behind.
    """
    quantized, plain, tensors = [], [], []
    state = model.state_dict()
    for name, t in state.items():
        if isinstance(t, QuantizedTensor):
            quantized.append({"name": name, "format": t.config_name, "shape": list(t.shape),
                              "dtype": str(t.dtype).replace("torch.", ""), "parts": list(t.part_names)})
            tensors.extend(p.detach() for p in t.parts)
    for name, t in state.items():
        if not isinstance(t, QuantizedTensor):
            plain.append(name)
            tensors.append(t.detach())
    _ops.write_quantized_file(str(path), tensors, json.dumps({"quantized": quantized, "plain": plain}))


def _bad(path: str, why: str) -> ValueError:
    return ValueError(f"load_quantized: {path}: {why}; the model was not changed")


def _read(path: str) -> Dict[str, torch.Tensor]:
    """The file's tensors by state_dict name (quantized weights as QuantizedTensor), checked by C++."""
    try:
        tensors, manifest = _ops.read_quantized_file(str(path))
    except RuntimeError as e:
        raise ValueError(f"{str(e).splitlines()[0]}; the model was not changed") from None
    manifest = json.loads(manifest)
    state: Dict[str, torch.Tensor] = {}
    it = iter(tensors)
    for q in manifest["quantized"]:
        parts = [next(it) for _ in q["parts"]]
        state[q["name"]] = QuantizedTensor(parts, q["format"], torch.Size(q["shape"]), getattr(torch, q["dtype"]))
    for name in manifest["plain"]:
        state[name] = next(it)
    return state


def load_quantized(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """Loads a file written by :func:`save_quantized` (either face) into ``model`` and returns it.

    ``model`` is the float model (or an already quantized one) with the same module names; the file's
    quantized weights replace its weights (as :class:`QuantizedTensor`, frozen) and its plain tensors
    are copied into the model's tensors, which keep their dtype, device and ``requires_grad``. A
    truncated, mismatched or hostile file is a ``ValueError`` and leaves ``model`` untouched:
    everything is read, checked and converted before anything is assigned.
    """
    state = _read(path)
    expected = model.state_dict(keep_vars=True)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise _bad(path, f"does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    copies: List[Tuple[torch.Tensor, torch.Tensor]] = []
    replacements: List[Tuple[str, QuantizedTensor]] = []
    for name, t in state.items():
        target = expected[name]
        if tuple(t.shape) != tuple(target.shape):
            raise _bad(path, f"'{name}' has shape {tuple(t.shape)}, the model has {tuple(target.shape)}")
        if isinstance(t, QuantizedTensor):
            module_name, _, attr = name.rpartition(".")
            module = model.get_submodule(module_name)
            if attr != "weight" or not isinstance(module, torch.nn.Linear):
                raise _bad(path, f"'{name}' is a quantized weight but the model's '{module_name or '<root>'}' is "
                           f"not an nn.Linear")
            try:
                t = t.to(device=target.device)
            except Exception as e:
                raise _bad(path, f"'{name}' cannot move to {target.device}: {e}") from None
            replacements.append((name, t))
        else:
            if isinstance(target, QuantizedTensor):
                raise _bad(path, f"'{name}' is a float tensor in the file but quantized in the model; load into "
                           "the float model")
            copies.append((target, t.to(device=target.device, dtype=target.dtype)))
    with torch.no_grad():
        for target, value in copies:
            target.copy_(value)
    for name, qweight in replacements:
        module_name, _, _ = name.rpartition(".")
        model.get_submodule(module_name).weight = torch.nn.Parameter(qweight, requires_grad=False)
    return model


__all__ = ["save_quantized", "load_quantized"]
