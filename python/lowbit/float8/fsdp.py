"""FSDP2 float8 all-gather: the weight tensor subclasses that FSDP2's extension hooks call.

With ``Float8LinearConfig(enable_fsdp_float8_all_gather=True)`` a :class:`Float8Linear`'s weight is a
:class:`Float8AllGatherWeight`. After ``torch.distributed.fsdp.fully_shard`` it is the local shard of
the DTensor parameter, and FSDP2 calls its hooks around every all-gather:

* ``fsdp_pre_all_gather``: the shard (in the mixed-precision ``param_dtype`` if one is set, i.e. what
  the linear would otherwise receive) is cast to float8 e4m3 with ONE scale for the whole weight:
  local amax -> all-reduce MAX over the shard group -> scale -> cast. It returns ``uint8`` views
  (Gloo carries no float8 dtypes) padded to FSDP's padded shard size (uneven dim 0).
* ``fsdp_post_all_gather``: the gathered bytes become a :class:`Float8GatheredWeight` (fp8 data +
  scale, dtype = ``param_dtype``), which ``Float8Linear`` hands to ``lowbit::float8_linear_precast``:
  the forward and grad_input GEMMs use the gathered bytes as they are. When FSDP gathers again into
  the same buffers (``out=``, e.g. backward after ``reshard_after_forward=True``) only the scale is
  refreshed, in place.

Every number comes from C++ ops (``float8_amax``, ``float8_amax_to_scale``,
``cast_to_float8_with_scale``, ``float8_linear_precast``), the same rules ``cast_to_float8`` and
``float8_linear`` apply, so the sharded model computes the unsharded float8 model's bits.
"""

import math
from typing import Any, List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.utils._pytree as pytree

from .. import core

_aten = torch.ops.aten

# Ops FSDP2 (and .to(), DTensor construction) apply to a sharded weight while padding, sharding and
# moving it: their results stay Float8AllGatherWeight. Everything else (optimizer math, state-dict
# copies) runs on the plain tensor inside and returns plain tensors.
_KEEP_SUBCLASS = {
    _aten.empty_like.default,
    _aten.new_zeros.default,
    _aten.new_empty.default,
    _aten.slice.Tensor,
    _aten.copy_.default,
    _aten.view.default,
    _aten.as_strided.default,
    _aten._to_copy.default,
    _aten._pin_memory.default,
    _aten.split.Tensor,
    _aten.clone.default,
    _aten.detach.default,
    _aten.alias.default,
}


def _mutated_args(func, args, kwargs) -> List[Any]:
    """The arguments an op writes to (alias annotation with a write), e.g. self of add_."""
    schema = getattr(func, "_schema", None)
    if schema is None or not schema.is_mutable:
        return []
    out = []
    for i, a in enumerate(schema.arguments):
        if a.alias_info is not None and a.alias_info.is_write:
            out.append(args[i] if i < len(args) else kwargs.get(a.name))
    return out


class Float8AllGatherWeight(torch.Tensor):
    """The high-precision master weight of a Float8Linear whose FSDP2 all-gather runs in float8.

    Behaves as the plain tensor it wraps (``_tensor``) for every op; implements FSDP2's
    ``fsdp_pre_all_gather`` / ``fsdp_post_all_gather``. ``_precomputed_amax`` (set by
    :func:`precompute_float8_dynamic_scale_for_fsdp`) replaces the per-weight all-reduce until
    the weight is next written to (any in-place op on it clears it, so a stale amax is never used).
    """

    @staticmethod
    def __new__(cls, tensor: torch.Tensor, power_of_2_scale: bool, precomputed_amax: Optional[torch.Tensor] = None):
        return torch.Tensor._make_wrapper_subclass(
            cls, tensor.size(), strides=tensor.stride(), storage_offset=tensor.storage_offset(),
            dtype=tensor.dtype, layout=tensor.layout, device=tensor.device, requires_grad=tensor.requires_grad)

    def __init__(self, tensor: torch.Tensor, power_of_2_scale: bool, precomputed_amax: Optional[torch.Tensor] = None):
        self._tensor = tensor
        self._pow2 = power_of_2_scale
        self._precomputed_amax = precomputed_amax

    def __repr__(self) -> str:
        return f"Float8AllGatherWeight({self._tensor}, power_of_2_scale={self._pow2})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        pow2 = None
        for t in pytree.tree_leaves((args, kwargs)):
            if isinstance(t, cls):
                pow2 = t._pow2
        for t in pytree.tree_leaves(_mutated_args(func, args, kwargs)):
            if isinstance(t, cls):
                t._precomputed_amax = None  # the weight changes: its precomputed amax is stale
        out = func(*pytree.tree_map_only(cls, lambda t: t._tensor, args),
                   **pytree.tree_map_only(cls, lambda t: t._tensor, kwargs))
        if func not in _KEEP_SUBCLASS:
            return out
        if func is _aten.copy_.default:
            return args[0]
        return pytree.tree_map_only(torch.Tensor, lambda t: cls(t, pow2), out)

    def __tensor_flatten__(self):
        return ["_tensor"], {"power_of_2_scale": self._pow2}

    @staticmethod
    def __tensor_unflatten__(inner_tensors, meta, outer_size, outer_stride):
        return Float8AllGatherWeight(inner_tensors["_tensor"], meta["power_of_2_scale"])

    # ---- FSDP2 extension (torch 2.11: the 5-argument form) ------------------------------------

    def fsdp_pre_all_gather(self, mesh, outer_size, outer_stride, module, mp_policy):
        if mesh.ndim != 1:
            raise NotImplementedError(
                f"float8 all-gather: FSDP shards over a {mesh.ndim}-D mesh; lowbit supports a 1-D shard mesh")
        param_dtype = mp_policy.param_dtype if mp_policy is not None else None
        w = self._tensor
        if param_dtype is not None and param_dtype != w.dtype:
            w = w.to(param_dtype)  # the weight the linear gets without fp8 all-gather
        amax = self._precomputed_amax
        if amax is not None:
            # Rounding is monotonic and symmetric: amax(w.to(d)) == amax(w).to(d).
            amax = amax.reshape(1)
            if param_dtype is not None and param_dtype != self._tensor.dtype:
                amax = amax.to(param_dtype).float()
        else:
            amax = core.float8_amax([w])
            dist.all_reduce(amax, op=dist.ReduceOp.MAX, group=mesh.get_group())
        scale = core.float8_amax_to_scale(amax, torch.float8_e4m3fn, power_of_2_scale=self._pow2).reshape(())
        data = core.cast_to_float8_with_scale(w, scale, torch.float8_e4m3fn).view(torch.uint8)
        padded_rows = math.ceil(outer_size[0] / mesh.size())
        if data.size(0) != padded_rows:  # uneven dim 0: FSDP wants every rank's padded shard size
            padded = data.new_zeros((padded_rows, *data.shape[1:]))
            padded[: data.size(0)].copy_(data)
            data = padded
        return (data,), (scale,)

    def fsdp_post_all_gather(self, all_gather_outputs: Tuple[torch.Tensor, ...], metadata: Any,
                             param_dtype: torch.dtype, *, out: Optional[torch.Tensor] = None):
        (data,) = all_gather_outputs
        (scale,) = metadata
        data = data.view(torch.float8_e4m3fn)
        if out is not None:
            # FSDP gathered into the buffers `out` views (possibly after freeing them): refresh the
            # scale in place, keeping the version counter the autograd graph recorded.
            if not isinstance(out, Float8GatheredWeight):
                raise RuntimeError(f"float8 all-gather: out must be a Float8GatheredWeight, got {type(out)}")
            with torch.no_grad(), torch.autograd._unsafe_preserve_version_counter(out._scale):
                out._scale.copy_(scale)
            if out._data.untyped_storage().data_ptr() != data.untyped_storage().data_ptr():
                with torch.no_grad(), torch.autograd._unsafe_preserve_version_counter(out._data):
                    out._data.copy_(data[: out._data.size(0)])
            return None
        return Float8GatheredWeight(data, scale.clone(), param_dtype, self._pow2), (data,)


class Float8GatheredWeight(torch.Tensor):
    """An all-gathered float8 weight: e4m3 ``_data`` and its tensorwise ``_scale``, with the dtype of
    the high-precision weight it stands for. FSDP2 installs it as the unsharded parameter;
    ``Float8Linear`` feeds it to ``lowbit::float8_linear_precast``, whose gradient (a plain tensor of
    this dtype) FSDP reduce-scatters. Only views and that op accept it."""

    @staticmethod
    def __new__(cls, data: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype, power_of_2_scale: bool):
        return torch.Tensor._make_wrapper_subclass(cls, data.size(), strides=data.stride(),
                                                   storage_offset=data.storage_offset(), dtype=dtype,
                                                   device=data.device, requires_grad=False)

    def __init__(self, data: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype, power_of_2_scale: bool):
        self._data = data
        self._scale = scale
        self._pow2 = power_of_2_scale

    def __repr__(self) -> str:
        return f"Float8GatheredWeight(shape={tuple(self.shape)}, dtype={self.dtype}, scale={self._scale})"

    _VIEWS = {_aten.as_strided.default, _aten.view.default, _aten.detach.default, _aten.alias.default,
              _aten.slice.Tensor, _aten._unsafe_view.default}

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in cls._VIEWS:
            w = args[0]
            data = func(w._data, *args[1:], **kwargs)
            return cls(data, w._scale, w.dtype, w._pow2)  # views share the scale tensor
        if func is torch.ops.lowbit.float8_linear_precast.default:
            # Only `weight`'s shape and dtype matter to the op: a zero-stride placeholder stands in.
            args = pytree.tree_map_only(
                cls, lambda w: torch.zeros((), dtype=w.dtype, device=w.device).expand(w.shape), args)
            return func(*args, **kwargs)
        raise RuntimeError(
            f"{func}: this weight holds float8 bytes all-gathered by FSDP for Float8Linear (scale "
            "included) and only Float8Linear's op reads it; gather the high-precision weight instead "
            "(e.g. model.state_dict() or full_tensor() of the sharded parameter)")

    def __tensor_flatten__(self):
        return ["_data", "_scale"], {"dtype": self.dtype, "power_of_2_scale": self._pow2}

    @staticmethod
    def __tensor_unflatten__(inner_tensors, meta, outer_size, outer_stride):
        return Float8GatheredWeight(inner_tensors["_data"], inner_tensors["_scale"], meta["dtype"],
                                    meta["power_of_2_scale"])


def _local(t: torch.Tensor) -> torch.Tensor:
    return t._local_tensor if hasattr(t, "_local_tensor") else t


@torch.no_grad()
def precompute_float8_dynamic_scale_for_fsdp(module: torch.nn.Module) -> None:
    """Computes the float8 scale (amax) of every fp8-all-gathered weight in ``module`` with ONE
    all-reduce for the whole model; the next all-gathers use it instead of one all-reduce per weight.

    Call after ``optimizer.step()``. Writing to a weight afterwards (another step, a load) discards
    its precomputed amax, so a stale scale is never used. Weights of all Float8Linear layers with
    ``enable_fsdp_float8_all_gather`` must be sharded over one mesh.
    """
    from .float8_linear import Float8Linear

    weights = [m.weight for m in module.modules()
               if isinstance(m, Float8Linear) and isinstance(_local(m.weight), Float8AllGatherWeight)]
    if not weights:
        return
    meshes = {w.device_mesh for w in weights if hasattr(w, "device_mesh")}
    if len(meshes) > 1:
        raise ValueError("precompute_float8_dynamic_scale_for_fsdp: the float8 weights are sharded over "
                         f"{len(meshes)} different meshes; one all-reduce needs one mesh")
    locals_ = [_local(w) for w in weights]
    amax = core.float8_amax([t._tensor for t in locals_])
    if meshes:
        (mesh,) = meshes
        if mesh.ndim != 1:
            raise NotImplementedError(f"precompute_float8_dynamic_scale_for_fsdp: {mesh.ndim}-D mesh; needs 1-D")
        dist.all_reduce(amax, op=dist.ReduceOp.MAX, group=mesh.get_group())
    for t, a in zip(locals_, amax.unbind(0)):
        t._precomputed_amax = a


torch.serialization.add_safe_globals([Float8AllGatherWeight])

__all__ = ["Float8AllGatherWeight", "Float8GatheredWeight", "precompute_float8_dynamic_scale_for_fsdp"]
