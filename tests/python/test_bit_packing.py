"""lowbit.core.pack_uintx / unpack_uintx: round trips, sizes and the exact byte layout.

Layout: code i occupies stream bits [i*bits, (i+1)*bits), least significant bit first; stream
bit k is bit k % 8 of byte k // 8. The reference below builds that stream with numpy's
unpackbits / packbits (bitorder="little"), independently of lowbit's per-byte gather.
"""

import numpy as np
import pytest
import torch

from lowbit.core import pack_uintx, unpack_uintx

LENGTHS = [0, 1, 7, 13, 1001]


def reference_pack(codes: np.ndarray, bits: int) -> np.ndarray:
    flat = codes.reshape(-1).astype(np.uint8)
    # (n, 8) little-endian bits of each code, keep the low `bits`, concatenate, pad to bytes.
    stream = np.unpackbits(flat[:, None], axis=1, bitorder="little")[:, :bits].reshape(-1)
    return np.packbits(stream, bitorder="little")


def random_codes(n: int, bits: int, rng) -> torch.Tensor:
    return torch.randint(0, 2**bits, (n,), generator=rng, dtype=torch.int32).to(torch.uint8)


@pytest.mark.parametrize("bits", range(1, 9))
def test_round_trip_sizes_and_layout(bits, rng):
    for n in LENGTHS:
        codes = random_codes(n, bits, rng)
        packed = pack_uintx(codes, bits)
        assert packed.dtype == torch.uint8 and packed.dim() == 1
        assert packed.numel() == (n * bits + 7) // 8  # ceil(n * bits / 8)
        assert np.array_equal(packed.numpy(), reference_pack(codes.numpy(), bits))
        assert torch.equal(unpack_uintx(packed, bits, n), codes)
        # A prefix of the stream unpacks to a prefix of the codes.
        if n > 1:
            assert torch.equal(unpack_uintx(packed, bits, n - 1), codes[: n - 1])
    # All-ones codes exercise every bit position; the unused high bits of the last byte are zero.
    ones = torch.full((13,), 2**bits - 1, dtype=torch.uint8)
    packed = pack_uintx(ones, bits)
    tail_bits = (13 * bits) % 8
    expected_last = 0xFF if tail_bits == 0 else (1 << tail_bits) - 1
    assert (packed[:-1] == 0xFF).all() and packed[-1].item() == expected_last


def test_multi_dim_codes_pack_in_flat_order(rng):
    codes = random_codes(6 * 10, 3, rng).view(6, 10)
    packed = pack_uintx(codes, 3)
    assert torch.equal(packed, pack_uintx(codes.reshape(-1), 3))
    assert torch.equal(unpack_uintx(packed, 3, 60).view(6, 10), codes)
    nc = codes.t()  # non-contiguous: packed in the flat order of its (logical) elements
    assert torch.equal(pack_uintx(nc, 3), pack_uintx(nc.contiguous(), 3))


def test_int4_first_code_in_low_nibble():
    codes = torch.tensor([0x1, 0x2, 0x3, 0xF, 0xA], dtype=torch.uint8)
    assert pack_uintx(codes, 4).tolist() == [0x21, 0xF3, 0x0A]


def test_fp6_four_codes_in_three_bytes():
    # a=0b111111, b=0b000000, c=0b101010, d=0b010101:
    #   byte0 = a | (b & 0b11) << 6             = 0x3F
    #   byte1 = b >> 2 | (c & 0b1111) << 4      = 0xA0
    #   byte2 = c >> 4 | d << 2                 = 0x02 | 0x54 = 0x56
    assert pack_uintx(torch.tensor([0x3F, 0x00, 0x2A, 0x15], dtype=torch.uint8), 6).tolist() == [0x3F, 0xA0, 0x56]
    # 1, 2, 3, 4: byte0 = 1 | 2 << 6 = 0x81; byte1 = 0 | 3 << 4 = 0x30; byte2 = 0 | 4 << 2 = 0x10.
    packed = pack_uintx(torch.tensor([1, 2, 3, 4, 5], dtype=torch.uint8), 6)
    assert packed.tolist() == [0x81, 0x30, 0x10, 0x05]  # the fifth code starts a new 3-byte group
    assert unpack_uintx(packed, 6, 5).tolist() == [1, 2, 3, 4, 5]


def test_other_known_layouts():
    # 2 bits: four codes per byte, first in the lowest two bits.
    assert pack_uintx(torch.tensor([1, 2, 3, 0, 3], dtype=torch.uint8), 2).tolist() == [0b00111001, 0b11]
    # 1 bit: eight codes per byte, LSB first.
    assert pack_uintx(torch.tensor([1, 0, 0, 0, 0, 0, 0, 1, 1], dtype=torch.uint8), 1).tolist() == [0x81, 0x01]
    # 3 bits: 5, 7, 1 -> 0b001_111_101 -> 0x7D, 0x00 | (1 >> 2) = 0x00.
    assert pack_uintx(torch.tensor([5, 7, 1], dtype=torch.uint8), 3).tolist() == [0x7D, 0x00]
    # 8 bits: identity.
    assert pack_uintx(torch.tensor([0, 255, 17], dtype=torch.uint8), 8).tolist() == [0, 255, 17]


def test_codes_that_do_not_fit_are_rejected():
    for bits in range(1, 8):
        codes = torch.zeros(9, dtype=torch.uint8)
        codes[4] = 2**bits
        with pytest.raises(RuntimeError, match=f"code {2**bits} at flat index 4 does not fit in {bits} bits"):
            pack_uintx(codes, bits)


def test_unpack_beyond_the_stream_is_rejected():
    packed = pack_uintx(torch.ones(7, dtype=torch.uint8), 6)  # 42 bits -> 6 bytes, room for 8 codes
    assert packed.numel() == 6
    assert unpack_uintx(packed, 6, 8).tolist() == [1] * 7 + [0]
    with pytest.raises(RuntimeError, match="6 bytes hold at most 8 codes of 6 bits, asked for 9"):
        unpack_uintx(packed, 6, 9)
    with pytest.raises(RuntimeError, match="numel must be >= 0"):
        unpack_uintx(packed, 6, -1)
    with pytest.raises(RuntimeError, match="hold at most 0 codes"):
        unpack_uintx(torch.empty(0, dtype=torch.uint8), 3, 1)


def test_bad_arguments_are_rejected():
    codes = torch.zeros(8, dtype=torch.uint8)
    for bits in (0, 9, -1):
        with pytest.raises(RuntimeError, match=f"bits={bits} is not supported; allowed: 1..8"):
            pack_uintx(codes, bits)
        with pytest.raises(RuntimeError, match=f"bits={bits} is not supported"):
            unpack_uintx(codes, bits, 1)
    for dtype in (torch.int8, torch.int32, torch.float32):
        with pytest.raises(RuntimeError, match="codes dtype torch.* is not supported; allowed: torch.uint8"):
            pack_uintx(codes.to(dtype), 4)
        with pytest.raises(RuntimeError, match="packed dtype torch.* is not supported; allowed: torch.uint8"):
            unpack_uintx(codes.to(dtype), 4, 2)
