"""QAT configs: how activations and weights are fake-quantized, and the quantize_ config they convert to."""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

_GRANULARITIES = ("per_token", "per_channel", "per_group")


def _qdtype_name(dtype) -> str:
    name = str(dtype).replace("torch.", "")
    valid = [f"int{b}" for b in range(1, 9)] + [f"uint{b}" for b in range(1, 9)]
    if name not in valid:
        raise ValueError(f"FakeQuantizeConfig: dtype {dtype!r} is not supported; allowed: {', '.join(valid)} "
                         "(strings or torch dtypes)")
    return name


@dataclass(frozen=True)
class FakeQuantizeConfig:
    """Fake quantization of one tensor: ``dtype`` (``torch.int8``, ``"int4"``, ``"uint4"``, ...),
    ``granularity`` (``"per_token"`` / ``"per_channel"``: one scale per row of the last dim;
    ``"per_group"``: one per ``group_size`` elements of it), ``symmetric``, ``dynamic`` (qparams from
    the tensor itself each forward; the only mode), ``zero_point_domain`` (``"int"``; ``"float"`` is
    tinygemm's, asymmetric only)."""

    dtype: object
    granularity: str = "per_token"
    group_size: Optional[int] = None
    symmetric: bool = True
    dynamic: bool = True
    zero_point_domain: str = "int"

    def __post_init__(self):
        object.__setattr__(self, "dtype", _qdtype_name(self.dtype))
        if self.granularity not in _GRANULARITIES:
            raise ValueError(f"FakeQuantizeConfig: granularity {self.granularity!r} is not one of {_GRANULARITIES}")
        if self.granularity == "per_group" and (self.group_size is None or self.group_size < 1):
            raise ValueError("FakeQuantizeConfig: granularity 'per_group' needs group_size >= 1")
        if not self.dynamic:
            raise ValueError("FakeQuantizeConfig: only dynamic=True is supported (qparams from each forward's tensor)")
        if self.zero_point_domain not in ("int", "float") or (self.zero_point_domain == "float" and self.symmetric):
            raise ValueError("FakeQuantizeConfig: zero_point_domain must be 'int', or 'float' with symmetric=False")

    def block_size(self, shape: Sequence[int]) -> Tuple[int, ...]:
        last = self.group_size if self.granularity == "per_group" else shape[-1]
        return (1,) * (len(shape) - 1) + (last,)

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through ``torch.ops.lowbit.fake_quantize_affine`` (straight-through gradient)."""
        return torch.ops.lowbit.fake_quantize_affine(x, list(self.block_size(x.shape)), self.dtype,
                                                     "symmetric" if self.symmetric else "asymmetric",
                                                     self.zero_point_domain)


@dataclass(frozen=True)
class Int8DynActInt4WeightQATConfig:
    """Per-token asymmetric int8 activations, group-wise symmetric int4 weights; converts to
    ``Int8DynamicActivationInt4WeightConfig(group_size)``."""

    group_size: int = 32

    def fake_quantize_configs(self):
        return (FakeQuantizeConfig("int8", "per_token", symmetric=False),
                FakeQuantizeConfig("int4", "per_group", group_size=self.group_size, symmetric=True))


@dataclass(frozen=True)
class Int4WeightOnlyQATConfig:
    """Group-wise asymmetric uint4 weights with float zero points (tinygemm's); converts to
    ``Int4WeightOnlyConfig(group_size)``."""

    group_size: int = 128

    def fake_quantize_configs(self):
        return (None, FakeQuantizeConfig("uint4", "per_group", group_size=self.group_size, symmetric=False,
                                         zero_point_domain="float"))
