"""QuantizedTensor: a linear weight held as the named parts of the C++ QuantizedWeight.

A wrapper tensor subclass (torchao's AffineQuantizedTensor pattern): it reports the logical shape
and dtype of the float weight and keeps the format's parts as plain tensors under their names
(``qdata``, ``scale``, ``zero_point``, ``scale_and_zero``: ``config.part_names``). ``F.linear``
calls the format's own op directly (``config.linear_op``, resolved once when the tensor is made),
so a forward call parses no strings. It flattens / unflattens for torch.compile, pickles with
``torch.save`` and loads with ``torch.load(weights_only=True)`` (its rebuild function is
registered as a safe global).
"""

from typing import List, Sequence

import torch

from .config import QuantizeConfig, as_config

_ops = torch.ops.lowbit


def _rebuild(config_name: str, parts: List[torch.Tensor], shape, dtype: torch.dtype) -> "QuantizedTensor":
    return QuantizedTensor(parts, config_name, shape, dtype)


class QuantizedTensor(torch.Tensor):
    """A quantized (out_features, in_features) weight in the format ``config`` (e.g. ``int4wo-128``)."""

    @staticmethod
    def __new__(cls, parts: Sequence[torch.Tensor], config, shape, dtype: torch.dtype):
        return torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype, device=parts[0].device,
                                                   requires_grad=False)

    def __init__(self, parts: Sequence[torch.Tensor], config, shape, dtype: torch.dtype):
        config = as_config(config)
        names = config.part_names
        if len(parts) != len(names):
            raise ValueError(f"QuantizedTensor({config.name}): expected parts {names}, got {len(parts)} tensors")
        self.config = config
        self.config_name = config.name
        self.part_names = tuple(names)
        for name, p in zip(names, parts):
            setattr(self, name, p)
        # The per-call path, resolved once: the format's op (its one overload, which skips the
        # packet's overload resolution), and its arguments after x (the parts, then constants).
        # Parts are only ever set here; copy_ writes into them in place.
        self._linear_op = getattr(_ops, config.linear_op).default
        self._linear_call_args = (*parts, *config.linear_op_args)

    @property
    def parts(self) -> List[torch.Tensor]:
        """The parts in the order the format's op takes them."""
        return [getattr(self, n) for n in self.part_names]

    @classmethod
    def from_float(cls, weight: torch.Tensor, config) -> "QuantizedTensor":
        """Quantizes a float (N, K) weight on its device with the C++ ``lowbit::quant::quantize_weight``."""
        config = as_config(config)
        parts = _ops.quantize_weight(weight.detach(), config.name)
        return cls(parts, config, weight.shape, weight.dtype)

    def dequantize(self) -> torch.Tensor:
        """The weight as a dense tensor of ``self.dtype``."""
        return _ops.dequantize_weight(self.parts, self.config_name, self.shape[0], self.shape[1], self.dtype)

    def nbytes_quantized(self) -> int:
        """Bytes the parts hold."""
        return sum(p.numel() * p.element_size() for p in self.parts)

    def __repr__(self) -> str:
        return (f"QuantizedTensor({self.config_name}, shape={tuple(self.shape)}, dtype={self.dtype}, "
                f"device={self.device})")

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self.config_name, self.parts, tuple(self.shape), self.dtype))

    # torch.compile: the parts are the inner tensors; the format travels as constant metadata.
    def __tensor_flatten__(self):
        return list(self.part_names), (self.config_name, self.dtype)

    @classmethod
    def __tensor_unflatten__(cls, inner_tensors, ctx, outer_size, outer_stride):
        name, dtype = ctx
        config = as_config(name)
        return cls([inner_tensors[n] for n in config.part_names], config, outer_size, dtype)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear:
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if isinstance(w, QuantizedTensor) and not isinstance(x, QuantizedTensor):
                if w.requires_grad and torch.is_grad_enabled():
                    raise RuntimeError(
                        f"QuantizedTensor({w.config_name}) requires grad, but a quantized weight is frozen and no "
                        "gradient would reach it; call weight.requires_grad_(False) (inputs and upstream layers "
                        "still get gradients; load_state_dict(..., assign=True) copies requires_grad from the float "
                        "model), or train the float weight with lowbit.qat")
                return w._linear_op(x, *w._linear_call_args, bias)
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)

    def _with_parts(self, parts, dtype=None) -> "QuantizedTensor":
        return QuantizedTensor(parts, self.config, self.shape, dtype or self.dtype)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        aten = torch.ops.aten
        self = args[0]
        if func in (aten.detach.default, aten.alias.default):
            return self._with_parts([func(p) for p in self.parts])
        if func is aten.clone.default:
            return self._with_parts([p.clone() for p in self.parts])
        if func is aten._to_copy.default:
            dtype = kwargs.get("dtype") or self.dtype
            device = torch.device(kwargs.get("device") or self.device)
            if dtype not in (torch.float32, torch.bfloat16, torch.float16):
                raise NotImplementedError(
                    f"QuantizedTensor({self.config_name}): cannot change dtype to {dtype}; a quantized weight "
                    "takes float32, bfloat16 or float16 (dequantize() first for a dense tensor)")
            parts = _ops.convert_quantized_weight(self.parts, self.config_name, dtype, device)
            return self._with_parts(parts, dtype)
        if func is aten.copy_.default:
            src = args[1]
            if not isinstance(src, QuantizedTensor):
                raise RuntimeError(
                    f"cannot copy a {src.dtype} tensor into QuantizedTensor({self.config_name}): the model is "
                    "quantized but the state dict holds a float weight; load the float state dict before "
                    "quantize_, or load a quantized one (lowbit.load_quantized, or load_state_dict(..., assign=True))")
            if src.config_name != self.config_name or src.shape != self.shape:
                raise RuntimeError(
                    f"cannot copy QuantizedTensor({src.config_name}, {tuple(src.shape)}) into "
                    f"QuantizedTensor({self.config_name}, {tuple(self.shape)}): format or shape differ; use "
                    "load_state_dict(..., assign=True) to replace the weight")
            for dst, s in zip(self.parts, src.parts):
                if dst.shape != s.shape:
                    raise RuntimeError(f"QuantizedTensor({self.config_name}): part shapes differ "
                                       f"({tuple(s.shape)} vs {tuple(dst.shape)})")
            for dst, s in zip(self.parts, src.parts):
                dst.copy_(s)
            return self
        raise NotImplementedError(f"QuantizedTensor({self.config_name}) does not support {func}; call "
                                  ".dequantize() for a dense tensor")


torch.serialization.add_safe_globals([_rebuild, QuantizedTensor])

__all__ = ["QuantizedTensor"]
