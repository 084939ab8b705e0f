"""float8 training: linears whose three GEMMs run as scaled fp8 GEMMs.

    from lowbit.float8 import Float8LinearConfig, convert_to_float8_training
    config = Float8LinearConfig.from_recipe_name("rowwise")
    convert_to_float8_training(model, config=config)

The autograd formula lives in C++ (``torch.ops.lowbit.float8_linear``) and is the same one C++
training loops use through ``lowbit::float8::convert_to_float8_training``.

FSDP2: with ``enable_fsdp_float8_all_gather=True`` (tensorwise recipe) weights are all-gathered as
float8 bytes; call :func:`precompute_float8_dynamic_scale_for_fsdp` after ``optimizer.step()`` to
compute all their scales with one all-reduce (see ``lowbit.float8.fsdp``).
"""

from .config import Float8LinearConfig
from .convert import convert_to_float8_training
from .float8_linear import Float8Linear
from .fsdp import Float8AllGatherWeight, Float8GatheredWeight, precompute_float8_dynamic_scale_for_fsdp

__all__ = ["Float8LinearConfig", "Float8Linear", "convert_to_float8_training", "Float8AllGatherWeight",
           "Float8GatheredWeight", "precompute_float8_dynamic_scale_for_fsdp"]
