"""Float8Linear: an nn.Linear whose forward and backward GEMMs run in float8."""

from typing import Optional

import torch

from .config import Float8LinearConfig


class Float8Linear(torch.nn.Linear):
    """``nn.Linear`` with the float8 training forward/backward of ``torch.ops.lowbit.float8_linear``.

    Same parameters (``weight``, ``bias``) in the same dtypes, so state_dicts move freely between
    converted and plain models; the master weight stays in its own dtype.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None,
                 *, config: Optional[Float8LinearConfig] = None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.set_config(config if config is not None else Float8LinearConfig())

    def set_config(self, config: Float8LinearConfig) -> None:
        """Installs ``config``; its fields are copied to plain attributes so torch.compile reads constants."""
        config.validate()
        self.config = config
        self.lowbit_method = f"float8_{config.recipe}"
        self._recipe = config.recipe
        self._emulate = bool(config.emulate)
        self._pow2 = bool(config.round_scales_to_power_of_2)
        self._recompute_weight = bool(config.force_recompute_fp8_weight_in_bwd)

    @classmethod
    def from_float(cls, mod: torch.nn.Linear, config: Float8LinearConfig) -> "Float8Linear":
        """A Float8Linear sharing ``mod``'s parameter objects (optimizers keep working)."""
        with torch.device("meta"):
            new = cls(mod.in_features, mod.out_features, bias=mod.bias is not None, config=config)
        new.weight = mod.weight
        new.bias = mod.bias
        return new

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return torch.ops.lowbit.float8_linear(input, self.weight, self.bias, self._recipe, self._emulate,
                                              self._pow2, self._recompute_weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, recipe={self._recipe}, emulate={self._emulate}"
