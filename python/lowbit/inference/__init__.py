"""Post-training quantization for inference: ``quantize_`` and its configs.

    import lowbit
    lowbit.quantize_(model, "int4wo")                      # or lowbit.inference.Int4WeightOnlyConfig(64)
    lowbit.quantize_(model, "int8dq", modules_to_not_convert=["lm_head"])
    plan = lowbit.autoquant(model, (x,))                   # fastest config per layer, measured

Quantized weights are :class:`QuantizedTensor` parameters holding the parts of the C++
``lowbit::inference::QuantizedWeight``; every number comes from ``torch.ops.lowbit.*``.
"""

from .config import (
    Float8DynamicActivationFloat8WeightConfig,
    Float8WeightOnlyConfig,
    FPXWeightOnlyConfig,
    Int4WeightOnlyConfig,
    Int8DynamicActivationInt4WeightConfig,
    Int8DynamicActivationInt8WeightConfig,
    Int8WeightOnlyConfig,
    QuantizeConfig,
    SemiSparseWeightConfig,
    UIntXWeightOnlyConfig,
    parse_quantize_config,
    quantize_shorthands,
)
from .autoquant import AutoquantPlan, apply_autoquant_plan, autoquant
from .quantize import quantize_
from .quantized_tensor import QuantizedTensor
from .serialization import load_quantized, save_quantized

__all__ = [
    "QuantizeConfig",
    "Int4WeightOnlyConfig",
    "Int8WeightOnlyConfig",
    "Int8DynamicActivationInt8WeightConfig",
    "Int8DynamicActivationInt4WeightConfig",
    "Float8WeightOnlyConfig",
    "Float8DynamicActivationFloat8WeightConfig",
    "FPXWeightOnlyConfig",
    "UIntXWeightOnlyConfig",
    "SemiSparseWeightConfig",
    "parse_quantize_config",
    "quantize_shorthands",
    "quantize_",
    "autoquant",
    "apply_autoquant_plan",
    "AutoquantPlan",
    "QuantizedTensor",
    "save_quantized",
    "load_quantized",
]
