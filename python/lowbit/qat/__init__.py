"""Quantization-aware training: fake-quantize linears while training, then convert them to the
real quantized model of the matching ``quantize_`` config.

    from lowbit import qat
    qat.prepare(model, qat.Int8DynActInt4WeightQATConfig(group_size=32))
    ...train...
    qat.convert(model)   # == lowbit.quantize_(model, Int8DynamicActivationInt4WeightConfig(32)) numerics

Fake quantization is ``torch.ops.lowbit.fake_quantize_affine`` (C++; straight-through gradient),
built from the same choose_qparams / quantize / dequantize ops quantize_ uses.
"""

from .config import FakeQuantizeConfig, Int4WeightOnlyQATConfig, Int8DynActInt4WeightQATConfig
from .linear import FakeQuantizedLinear
from .prepare import convert, prepare

__all__ = ["FakeQuantizeConfig", "Int8DynActInt4WeightQATConfig", "Int4WeightOnlyQATConfig", "FakeQuantizedLinear",
           "prepare", "convert"]
