"""float8 training: linears whose three GEMMs run as scaled fp8 GEMMs.

    from lowbit.float8 import Float8LinearConfig, convert_to_float8_training
    config = Float8LinearConfig.from_recipe_name("rowwise")
    convert_to_float8_training(model, config=config)

The autograd formula lives in C++ (``torch.ops.lowbit.float8_linear``) and is the same one C++
training loops use through ``lowbit::float8::convert_to_float8_training``.
"""

from .config import Float8LinearConfig
from .convert import convert_to_float8_training
from .float8_linear import Float8Linear

__all__ = ["Float8LinearConfig", "Float8Linear", "convert_to_float8_training"]
