"""Low-bit optimizers: ``AdamW8bit``, ``AdamW4bit``, ``AdamWFp8`` (``torch.optim.Optimizer``
subclasses with ``torch.optim.AdamW``'s constructor) and ``save_state`` / ``load_state``, the
safetensors state file shared with the C++ face ``lowbit::optim``."""

from .adamw import AdamW4bit, AdamW8bit, AdamWFp8
from .state_file import load_state, save_state

__all__ = ["AdamW8bit", "AdamW4bit", "AdamWFp8", "save_state", "load_state"]
