"""SemiSparseLinear and SemiSparseActivationLinear: nn.Linear subclasses that train with 2:4 sparsity."""

from typing import Optional

import torch

from .config import SemiSparseTrainingConfig


class _SemiSparseBase(torch.nn.Linear):
    _target = "weight"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None,
                 *, config: Optional[SemiSparseTrainingConfig] = None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.set_config(config if config is not None else SemiSparseTrainingConfig(target=self._target))

    def set_config(self, config: SemiSparseTrainingConfig) -> None:
        """Installs ``config`` (its target must match the class); the fields are copied to plain
        attributes so torch.compile reads constants."""
        config.validate()
        if config.target != self._target:
            raise ValueError(f"{type(self).__name__} prunes the {self._target}; got a config with target="
                             f"'{config.target}' (use {_CLASS_OF[config.target].__name__})")
        self.config = config
        self.lowbit_method = f"semi_sparse_{config.target}"  # the C++ method's name (quantize_ skips it)
        self._algorithm = config.algorithm
        self._gradient = config.gradient

    @classmethod
    def from_dense(cls, mod: torch.nn.Linear, config: Optional[SemiSparseTrainingConfig] = None):
        """A module of this class sharing ``mod``'s parameter objects (optimizers keep working)."""
        with torch.device("meta"):
            new = cls(mod.in_features, mod.out_features, bias=mod.bias is not None, config=config)
        new.weight = mod.weight
        new.bias = mod.bias
        return new

    def to_dense(self, *, prune_weights: bool = False) -> torch.nn.Linear:
        """A plain ``nn.Linear`` sharing this module's parameter objects (the dense master weight).
        ``prune_weights`` (weight-sparse modules) first writes ``W⊙M``, the weight the sparse forward
        used, into the master weight, so the dense module computes the same function."""
        if prune_weights and self._target == "weight":
            with torch.no_grad():
                self.weight.copy_(torch.ops.lowbit.prune_2_4(self.weight, self._algorithm)[0])
        with torch.device("meta"):
            new = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        new.weight = self.weight
        new.bias = self.bias
        return new

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, algorithm={self._algorithm}, gradient={self._gradient}"


class SemiSparseLinear(_SemiSparseBase):
    """``nn.Linear`` whose weight is pruned to 2:4 (``lowbit.core.prune_2_4``) at every forward.

    ``y = x (W⊙M)^T + b``; grad_input ``gy (W⊙M)`` (both 2:4 GEMMs on CUDA, exact dense GEMMs with
    the pruned weight on CPU), grad_weight dense ``gy^T x``, unmasked (``gradient="ste"``) or masked
    (``"masked"``), so the dense master weight keeps training. Same parameters as ``nn.Linear``.
    """

    _target = "weight"

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return torch.ops.lowbit.semi_sparse_linear(input, self.weight, self.bias, self._algorithm, self._gradient)


class SemiSparseActivationLinear(_SemiSparseBase):
    """``nn.Linear`` whose input is pruned to 2:4 (4x4 tiles of the ``(tokens, in_features)`` input)
    at every forward, e.g. the second linear of a squared-ReLU FFN, whose inputs are non-negative and
    mostly zero.

    ``y = (x⊙M) W^T + b``; grad_weight ``gy^T (x⊙M)`` (both 2:4 GEMMs on CUDA), grad_input dense
    ``gy W``, unmasked (``"ste"``) or masked. The number of tokens must be a multiple of 4.
    """

    _target = "activation"

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return torch.ops.lowbit.semi_sparse_activation_linear(input, self.weight, self.bias, self._algorithm,
                                                              self._gradient)


_CLASS_OF = {"weight": SemiSparseLinear, "activation": SemiSparseActivationLinear}

__all__ = ["SemiSparseLinear", "SemiSparseActivationLinear"]
