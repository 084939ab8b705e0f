"""QuantizedTensor: a linear weight held as the parts of the C++ QuantizedWeight.

A wrapper tensor subclass (torchao's AffineQuantizedTensor pattern): it reports the logical shape
and dtype of the float weight, keeps the packed data, scale and zero point as plain tensors
(``part0``, ``part1``, ``part2``), routes ``F.linear`` to ``torch.ops.lowbit.quantized_linear`` and
flattens / unflattens for torch.compile. state_dict() and load_state_dict(..., assign=True) carry it.
"""

from typing import List, Sequence

import torch

_ops = torch.ops.lowbit


class QuantizedTensor(torch.Tensor):
    """A quantized (out_features, in_features) weight in the format ``config_name`` (e.g. ``"int4wo-128"``)."""

    @staticmethod
    def __new__(cls, parts: Sequence[torch.Tensor], config_name: str, shape, dtype: torch.dtype):
        return torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype, device=parts[0].device,
                                                   requires_grad=False)

    def __init__(self, parts: Sequence[torch.Tensor], config_name: str, shape, dtype: torch.dtype):
        self.config_name = config_name
        self.num_parts = len(parts)
        for i, p in enumerate(parts):
            setattr(self, f"part{i}", p)

    @property
    def parts(self) -> List[torch.Tensor]:
        return [getattr(self, f"part{i}") for i in range(self.num_parts)]

    @classmethod
    def from_float(cls, weight: torch.Tensor, config_name: str) -> "QuantizedTensor":
        """Quantizes a float (N, K) weight on its device with the C++ ``lowbit::quantize_weight``."""
        parts = _ops.quantize_weight(weight.detach(), config_name)
        return cls(parts, config_name, weight.shape, weight.dtype)

    def dequantize(self) -> torch.Tensor:
        """The weight as a dense tensor of ``self.dtype``."""
        return _ops.dequantize_weight(self.parts, self.config_name, self.shape[0], self.shape[1], self.dtype)

    def nbytes_quantized(self) -> int:
        """Bytes the parts hold."""
        return sum(p.numel() * p.element_size() for p in self.parts)

    def __repr__(self) -> str:
        return (f"QuantizedTensor({self.config_name}, shape={tuple(self.shape)}, dtype={self.dtype}, "
                f"device={self.device})")

    # torch.compile: the parts are the inner tensors; the format travels as constant metadata.
    def __tensor_flatten__(self):
        return [f"part{i}" for i in range(self.num_parts)], (self.config_name, self.num_parts, self.dtype)

    @classmethod
    def __tensor_unflatten__(cls, inner_tensors, ctx, outer_size, outer_stride):
        name, n, dtype = ctx
        return cls([inner_tensors[f"part{i}"] for i in range(n)], name, outer_size, dtype)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear:
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if isinstance(w, QuantizedTensor) and not isinstance(x, QuantizedTensor):
                return _ops.quantized_linear(x, w.parts, w.config_name, bias)
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)

    def _with_parts(self, fn) -> "QuantizedTensor":
        return QuantizedTensor([fn(p) for p in self.parts], self.config_name, self.shape, self.dtype)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        aten = torch.ops.aten
        self = args[0]
        if func in (aten.detach.default, aten.alias.default):
            return self._with_parts(func)
        if func is aten.clone.default:
            return self._with_parts(lambda p: p.clone())
        if func is aten._to_copy.default:
            dtype = kwargs.get("dtype")
            if dtype is not None and dtype != self.dtype:
                raise NotImplementedError(f"QuantizedTensor({self.config_name}): cannot change dtype to {dtype}; "
                                          "dequantize() first")
            device = kwargs.get("device")
            if device is not None and torch.device(device).type != self.device.type and \
                    self.config_name.startswith("int4wo"):
                raise NotImplementedError("QuantizedTensor(int4wo): tinygemm's packing differs between CPU and CUDA; "
                                          "quantize on the target device (quantize_(..., device=...))")
            return self._with_parts(lambda p: p.to(device=device) if device is not None else p)
        raise NotImplementedError(f"QuantizedTensor({self.config_name}) does not support {func}; call "
                                  ".dequantize() for a dense tensor")


__all__ = ["QuantizedTensor"]
