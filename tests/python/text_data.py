"""Real text for the optimizer tests: Debian's fortunes (package `fortunes`), as bytes.

Reads the plain fortune files of /usr/share/games/fortunes (not the .dat indexes or .u8 links)
in name order; tokens are bytes (vocabulary 256). The C++ tests read the same files the same
way (tests/cpp/test_optim.cpp)."""

import os
from typing import Optional

import torch

FORTUNES_DIR = "/usr/share/games/fortunes"


def fortunes_bytes(max_bytes: int = 1 << 20) -> Optional[torch.Tensor]:
    """The first max_bytes bytes of the fortunes as a uint8 tensor, or None when absent."""
    if not os.path.isdir(FORTUNES_DIR):
        return None
    data = bytearray()
    for name in sorted(os.listdir(FORTUNES_DIR)):
        path = os.path.join(FORTUNES_DIR, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data += f.read()
        if len(data) >= max_bytes:
            break
    if not data:
        return None
    return torch.frombuffer(data[:max_bytes], dtype=torch.uint8).clone()


SKIP_REASON = f"no fortune files in {FORTUNES_DIR} (apt-get install fortunes)"
