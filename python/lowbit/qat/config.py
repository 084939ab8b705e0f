"""QAT configs: the C++ structs (qat/config.h), bound once through lowbit._C.

``FakeQuantizeConfig(dtype, granularity="per_token", group_size=None, symmetric=True, dynamic=True,
zero_point_domain="int")`` describes how one tensor is fake-quantized; ``QATConfig(activation,
weight, convert_to=None)`` pairs two of them with the quantize_ config convert applies;
``Int8DynActInt4WeightQATConfig(group_size=32)`` and ``Int4WeightOnlyQATConfig(group_size=128)``
are the two recipes that convert to real quantized formats. Every check (dtype, granularity, group
size, zero-point domain, the target format's group sizes) runs when a config is made.
"""

from .. import _C

FakeQuantizeConfig = _C.FakeQuantizeConfig
QATConfig = _C.QATConfig
Int8DynActInt4WeightQATConfig = _C.Int8DynActInt4WeightQATConfig
Int4WeightOnlyQATConfig = _C.Int4WeightOnlyQATConfig

__all__ = ["FakeQuantizeConfig", "QATConfig", "Int8DynActInt4WeightQATConfig", "Int4WeightOnlyQATConfig"]
