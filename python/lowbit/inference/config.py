"""quantize_'s configs and shorthands: the C++ format table, bound once through lowbit._C.

Every registered format family is a constructor here (``Int4WeightOnlyConfig(group_size=128)``,
``Int8WeightOnlyConfig()``, ``Int8DynamicActivationInt8WeightConfig()``,
``Int8DynamicActivationInt4WeightConfig(group_size=32)``, ``Float8WeightOnlyConfig(dtype)``,
``Float8DynamicActivationFloat8WeightConfig(granularity)``, ``FPXWeightOnlyConfig(ebits, mbits)``,
``UIntXWeightOnlyConfig(bits, group_size=64)``) returning a :class:`QuantizeConfig`;
``parse_quantize_config("int4wo")`` maps a shorthand to one.
"""

from typing import Union

from .. import _C

QuantizeConfig = _C.QuantizeConfig
parse_quantize_config = _C.parse_quantize_config

#: The config classes the C++ format table registers, in documentation order.
CONFIG_KINDS = tuple(_C.quantize_config_kinds)
globals().update({kind: getattr(_C, kind) for kind in CONFIG_KINDS})


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


__all__ = ["QuantizeConfig", "parse_quantize_config", "quantize_shorthands", "as_config", "CONFIG_KINDS",
           *CONFIG_KINDS]
