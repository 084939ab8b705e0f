"""Quantization-aware training: fake-quantize linears while training, then convert them to the
real quantized model of the matching ``quantize_`` config.

    from lowbit import qat
    qat.prepare(model, qat.Int8DynActInt4WeightQATConfig(group_size=32))
    ...train...
    qat.convert(model)   # == lowbit.quantize_(model, Int8DynamicActivationInt4WeightConfig(32)) numerics

The configs are the C++ structs (bound); the forward is ``torch.ops.lowbit.fake_quantized_linear``
(C++; straight-through gradient), built from the same choose_qparams / quantize / dequantize ops
quantize_ uses.
"""

from .config import FakeQuantizeConfig, Int4WeightOnlyQATConfig, Int8DynActInt4WeightQATConfig, QATConfig
from .linear import FakeQuantizedLinear
from .prepare import convert, prepare

__all__ = ["FakeQuantizeConfig", "QATConfig", "Int8DynActInt4WeightQATConfig", "Int4WeightOnlyQATConfig",
           "FakeQuantizedLinear", "prepare", "convert"]
