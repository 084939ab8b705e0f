"""FakeQuantizedLinear: an nn.Linear that trains through fake-quantized activations and weights."""

from typing import Optional

import torch

from .config import FakeQuantizeConfig


class FakeQuantizedLinear(torch.nn.Linear):
    """``nn.Linear`` computing ``F.linear(fq_act(x), fq_weight(W)) + b`` in float32, cast back to x's
    dtype: the numerics of the quantized ops it converts to. Same parameters as the linear it replaces."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *,
                 activation_config: Optional[FakeQuantizeConfig] = None,
                 weight_config: Optional[FakeQuantizeConfig] = None, convert_to=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.activation_config = activation_config
        self.weight_config = weight_config
        self.convert_to = convert_to  # the quantize_ config convert() applies

    @classmethod
    def from_linear(cls, mod: torch.nn.Linear, activation_config, weight_config, convert_to) -> "FakeQuantizedLinear":
        with torch.device("meta"):
            new = cls(mod.in_features, mod.out_features, mod.bias is not None, activation_config=activation_config,
                      weight_config=weight_config, convert_to=convert_to)
        new.weight = mod.weight
        new.bias = mod.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        if self.activation_config is not None:
            xf = self.activation_config.fake_quantize(xf)
        w = self.weight.float()
        if self.weight_config is not None:
            w = self.weight_config.fake_quantize(w)
        if self.activation_config is None:  # weight-only: the GEMM runs in the activations' dtype
            return torch.nn.functional.linear(x, w.to(x.dtype), self.bias)
        y = torch.nn.functional.linear(xf, w)
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, act={self.activation_config}, weight={self.weight_config}"
