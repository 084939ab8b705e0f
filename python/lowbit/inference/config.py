"""quantize_'s configs and shorthands: the C++ structs and parser, bound once through lowbit._C.

``Int4WeightOnlyConfig(group_size=128)``, ``Int8WeightOnlyConfig()``,
``Int8DynamicActivationInt8WeightConfig()``, ``Int8DynamicActivationInt4WeightConfig(group_size=32)``,
``Float8WeightOnlyConfig(dtype)``, ``Float8DynamicActivationFloat8WeightConfig(granularity)``,
``FPXWeightOnlyConfig(ebits, mbits)``, ``UIntXWeightOnlyConfig(bits, group_size=64)`` each return a
:class:`QuantizeConfig`; ``parse_quantize_config("int4wo")`` maps a shorthand to one.
"""

from typing import Union

from .. import _C

QuantizeConfig = _C.QuantizeConfig
Int4WeightOnlyConfig = _C.Int4WeightOnlyConfig
Int8WeightOnlyConfig = _C.Int8WeightOnlyConfig
Int8DynamicActivationInt8WeightConfig = _C.Int8DynamicActivationInt8WeightConfig
Int8DynamicActivationInt4WeightConfig = _C.Int8DynamicActivationInt4WeightConfig
Float8WeightOnlyConfig = _C.Float8WeightOnlyConfig
Float8DynamicActivationFloat8WeightConfig = _C.Float8DynamicActivationFloat8WeightConfig
FPXWeightOnlyConfig = _C.FPXWeightOnlyConfig
UIntXWeightOnlyConfig = _C.UIntXWeightOnlyConfig
parse_quantize_config = _C.parse_quantize_config


def quantize_shorthands() -> list:
    """Every shorthand :func:`parse_quantize_config` (and ``quantize_``) accepts."""
    return list(_C.quantize_shorthands())


def as_config(config: Union[str, QuantizeConfig]) -> QuantizeConfig:
    """A config object from a config or a shorthand string (ValueError listing valid names)."""
    if isinstance(config, str):
        return parse_quantize_config(config)
    if isinstance(config, QuantizeConfig):
        return config
    raise TypeError(f"quantize_: config must be a QuantizeConfig or a shorthand string, got {type(config).__name__}")
