"""Real text for the recipes: Debian's fortunes as bytes, a byte-level tokenizer, a deterministic
train / validation split and batches that depend only on (seed, step). The C++ face
(recipes/data.h) reads and splits the same files the same way, token for token."""

from __future__ import annotations

import os

import torch

FORTUNES_DIR = "/usr/share/games/fortunes"
#: Byte-level tokens: bytes need no trained artifact, cover every input and keep both faces identical.
BYTE_VOCAB_SIZE = 256
#: Joins fortunes; plain text never contains byte 0.
DOCUMENT_SEPARATOR = 0


def encode_bytes(text: str | bytes) -> list[int]:
    """Text (UTF-8) -> byte tokens."""
    return list(text.encode("utf-8") if isinstance(text, str) else text)


def decode_bytes(tokens) -> str:
    """Byte tokens -> text (invalid UTF-8 replaced)."""
    return bytes(int(t) for t in tokens).decode("utf-8", errors="replace")


def load_fortunes(folder: str = FORTUNES_DIR) -> list[bytes]:
    """The fortunes of every plain file in ``folder`` (not .dat indexes, not .u8 links), in name
    order, split at the ``%`` lines."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"load_fortunes: no folder {folder} (install Debian's fortunes package: "
                                "apt-get install fortunes)")
    fortunes: list[bytes] = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # the final newline ends the last line; it does not start a new one
        current = b""
        for line in lines:
            if line == b"%":
                if current:
                    fortunes.append(current)
                current = b""
            else:
                current += line + b"\n"
        if current:
            fortunes.append(current)
    if not fortunes:
        raise ValueError(f"load_fortunes: no fortunes in {folder}")
    return fortunes


def split_fortunes(fortunes: list[bytes], val_every: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) int64 token streams: fortune i goes to validation when
    ``i % val_every == val_every - 1``; each fortune is followed by the separator."""
    if val_every < 2:
        raise ValueError(f"split_fortunes: val_every must be >= 2, got {val_every}")
    sep = bytes([DOCUMENT_SEPARATOR])
    train = b"".join(f + sep for i, f in enumerate(fortunes) if i % val_every != val_every - 1)
    val = b"".join(f + sep for i, f in enumerate(fortunes) if i % val_every == val_every - 1)
    as_tensor = lambda b: torch.frombuffer(bytearray(b), dtype=torch.uint8).to(torch.int64)  # noqa: E731
    return as_tensor(train), as_tensor(val)


def train_batch(tokens: torch.Tensor, batch_size: int, seq_len: int, seed: int, step: int):
    """(inputs, targets), each (batch_size, seq_len): windows at offsets drawn from a generator
    seeded with seed + step, so a resumed run sees the batches an uninterrupted one would."""
    n = tokens.numel()
    if n <= seq_len + 1:
        raise ValueError(f"train_batch: {n} tokens are too few for seq_len {seq_len}")
    gen = torch.Generator().manual_seed(seed + step)
    starts = torch.randint(n - seq_len - 1, (batch_size,), generator=gen, dtype=torch.int64)
    w = torch.stack([tokens[s : s + seq_len + 1] for s in starts.tolist()])
    return w[:, :seq_len].contiguous(), w[:, 1:].contiguous()


def val_batches(tokens: torch.Tensor, batch_size: int, seq_len: int, max_batches: int):
    """Consecutive non-overlapping validation windows, at most ``max_batches`` batches."""
    out = []
    n_windows = (tokens.numel() - 1) // seq_len
    b = 0
    while b < max_batches and (b + 1) * batch_size <= n_windows:
        starts = [(b * batch_size + i) * seq_len for i in range(batch_size)]
        w = torch.stack([tokens[s : s + seq_len + 1] for s in starts])
        out.append((w[:, :seq_len].contiguous(), w[:, 1:].contiguous()))
        b += 1
    if not out:
        raise ValueError(f"val_batches: the validation split is too short for one batch of {batch_size} x {seq_len}")
    return out
