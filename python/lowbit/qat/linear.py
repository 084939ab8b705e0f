"""FakeQuantizedLinear: an nn.Linear that trains through fake-quantized activations and weights."""

import torch

from .config import QATConfig


class FakeQuantizedLinear(torch.nn.Linear):
    """``nn.Linear`` computing ``torch.ops.lowbit.fake_quantized_linear`` under a :class:`QATConfig`:
    the numerics of the quantized format it converts to, with a straight-through gradient (the same
    C++ op ``lowbit::qat::FakeQuantizedLinearMethod`` runs). Same parameters as the linear it replaces."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *, config: QATConfig):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.set_config(config)

    def set_config(self, config: QATConfig) -> None:
        """Installs ``config``; the op's arguments are resolved here, once, not per forward call."""
        self.config = config
        self.lowbit_method = config.method_name
        self._op_args = tuple(config.op_args)

    @property
    def activation_config(self):
        return self.config.activation

    @property
    def weight_config(self):
        return self.config.weight

    @property
    def convert_to(self):
        """The quantize_ config convert() applies (None for a custom pair)."""
        return self.config.convert_to

    @classmethod
    def from_linear(cls, mod: torch.nn.Linear, config: QATConfig) -> "FakeQuantizedLinear":
        """A FakeQuantizedLinear sharing ``mod``'s parameter objects (optimizers keep working)."""
        with torch.device("meta"):
            new = cls(mod.in_features, mod.out_features, mod.bias is not None, config=config)
        new.weight = mod.weight
        new.bias = mod.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.lowbit.fake_quantized_linear(x, self.weight, self.bias, *self._op_args)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, qat={self.config}"
