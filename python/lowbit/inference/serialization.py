"""save_quantized / load_quantized: quantized models as safetensors files (no pickle).

File layout (the C++ ``lowbit::inference::save_quantized`` / ``load_quantized`` read and write the
same): every plain state_dict entry is a tensor under its own name; a quantized weight ``<name>``
is stored as its parts ``<name>.part0``, ``<name>.part1`` (, ``<name>.part2``) and described in the
``__metadata__`` map under ``lowbit.quantized.<name>`` by a JSON object
``{"format": "int4wo-128", "shape": [N, K], "dtype": "bfloat16", "parts": 2}``, with
``lowbit.format_version`` = ``"1"``. Packed int4 (tinygemm) weights are device-specific; the files
hold the CPU packing.
"""

import json
import os
from typing import Dict

import torch

from .config import parse_quantize_config
from .quantized_tensor import QuantizedTensor

FORMAT_VERSION = "1"
_META_PREFIX = "lowbit.quantized."
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def save_quantized(model: torch.nn.Module, path: str) -> None:
    """Writes ``model.state_dict()`` (quantized weights as their parts plus JSON metadata) to ``path``."""
    from safetensors.torch import save_file

    tensors: Dict[str, torch.Tensor] = {}
    metadata = {"lowbit.format_version": FORMAT_VERSION}
    for name, t in model.state_dict().items():
        if isinstance(t, QuantizedTensor):
            for i, p in enumerate(t.parts):
                tensors[f"{name}.part{i}"] = p.detach().cpu().contiguous()
            metadata[_META_PREFIX + name] = json.dumps(
                {"format": t.config_name, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                 "parts": t.num_parts})
        else:
            tensors[name] = t.detach().cpu().contiguous()
    tmp = f"{path}.tmp"
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)


def _bad(path: str, why: str) -> ValueError:
    return ValueError(f"load_quantized: {path}: {why}; the model was not changed")


def _describe(path: str, name: str, text: str):
    try:
        d = json.loads(text)
        fmt, shape, dtype, n = d["format"], d["shape"], d["dtype"], d["parts"]
        assert isinstance(fmt, str) and isinstance(n, int) and isinstance(shape, list) and len(shape) == 2
        assert all(isinstance(s, int) and s > 0 for s in shape) and dtype in _DTYPES
    except Exception:
        raise _bad(path, f"malformed metadata for '{name}': {text[:200]!r}") from None
    try:
        parse_quantize_config(fmt)
    except ValueError as e:
        raise _bad(path, f"'{name}' has unknown format {fmt!r} ({str(e)[:80]}...)") from None
    return fmt, shape, _DTYPES[dtype], n


def load_quantized(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """Loads a file written by :func:`save_quantized` (either face) into ``model`` and returns it.

    ``model`` is the float model (or an already quantized one) with the same module names; its
    weights are replaced by the file's (quantized ones become :class:`QuantizedTensor`). A
    truncated, mismatched or hostile file is a ``ValueError`` and leaves ``model`` untouched:
    everything is read and checked before anything is assigned.
    """
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            raw = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # truncated files, bad headers, bad offsets
        raise _bad(path, f"not a readable safetensors file ({type(e).__name__}: {e})") from None
    if metadata.get("lowbit.format_version") != FORMAT_VERSION:
        raise _bad(path, f"lowbit.format_version is {metadata.get('lowbit.format_version')!r}, expected "
                   f"{FORMAT_VERSION!r} (not a file from save_quantized?)")
    expected = model.state_dict()
    state: Dict[str, torch.Tensor] = {}
    used = set()
    for key, text in metadata.items():
        if not key.startswith(_META_PREFIX):
            continue
        name = key[len(_META_PREFIX):]
        fmt, shape, dtype, n = _describe(path, name, text)
        parts = []
        for i in range(n):
            part = raw.get(f"{name}.part{i}")
            if part is None:
                raise _bad(path, f"'{name}' is missing its part{i}")
            parts.append(part)
            used.add(f"{name}.part{i}")
        try:  # the format's op checks that the parts fit the shape (an empty batch costs nothing)
            y = torch.ops.lowbit.quantized_linear(torch.empty(0, shape[1], dtype=dtype), parts, fmt)
            assert y.shape[-1] == shape[0]
        except Exception as e:
            raise _bad(path, f"parts of '{name}' do not form a {fmt} weight of shape {shape}: {e}") from None
        state[name] = QuantizedTensor(parts, fmt, torch.Size(shape), dtype)
    for name, t in raw.items():
        if name not in used:
            state[name] = t
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise _bad(path, f"does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, t in state.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise _bad(path, f"'{name}' has shape {tuple(t.shape)}, the model has {tuple(expected[name].shape)}")
    for name, t in state.items():
        device = expected[name].device
        if t.device != device and not (isinstance(t, QuantizedTensor) and t.config_name.startswith("int4wo")):
            state[name] = t.to(device)
    model.load_state_dict(state, assign=True)
    for name, p in model.named_parameters():
        if isinstance(p, QuantizedTensor) and p.requires_grad:
            p.requires_grad_(False)
    return model


__all__ = ["save_quantized", "load_quantized"]
