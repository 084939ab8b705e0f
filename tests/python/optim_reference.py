"""An independent, plain-PyTorch statement of one lowbit AdamW step on quantized states (the
formats of csrc/core/optimizer_state_formats.h), written from the format description rather
than from the kernels, for the spec tests in test_optim.py. Slow and simple on purpose."""

import math

import numpy as np
import torch


def dynamic_tree_map(bits: int, signed: bool) -> torch.Tensor:
    """Sign bit (signed only), E zero bits for the decade 10^-E, an indicator bit, and F linear
    fraction bits (bin midpoints of [0.1, 1]); plus 0 and 1."""
    magnitude_bits = bits - 1 if signed else bits
    values = [0.0, 1.0]
    for e in range(bits - 1):
        n = 2 ** (magnitude_bits - 1 - e)
        for f in range(n):
            v = 10.0**-e * (0.1 + 0.9 * (f + 0.5) / n)
            values += [v, -v] if signed else [v]
    assert len(values) == 2**bits
    return torch.tensor(sorted(values), dtype=torch.float32)


def linear_map_without_zero(bits: int) -> torch.Tensor:
    return torch.arange(1, 2**bits + 1, dtype=torch.float32) / 2**bits


def nearest_codes(x: torch.Tensor, qmap: torch.Tensor) -> torch.Tensor:
    """Index of the nearest map entry; ties go to the lower index (argmin's first minimum)."""
    return (x.unsqueeze(-1) - qmap).abs().argmin(-1).to(torch.uint8)


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    if codes.numel() % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    c = codes.view(-1, 2)
    return (c[:, 0] | (c[:, 1] << 4)).to(torch.uint8)


def unpack_nibbles(packed: torch.Tensor, n: int) -> torch.Tensor:
    return torch.stack([packed & 0xF, packed >> 4], -1).view(-1)[:n]


def blocks(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """x (flat) padded with zeros to whole blocks, as (num_blocks, block_size)."""
    pad = (-x.numel()) % block_size
    return torch.cat([x, x.new_zeros(pad)]).view(-1, block_size)


def per_element(scales: torch.Tensor, n: int, block_size: int) -> torch.Tensor:
    return scales.repeat_interleave(block_size)[:n]


def normal_scale(s):
    """A positive scale below the smallest normal float is raised to it (its reciprocal stays finite)."""
    tiny = torch.finfo(torch.float32).tiny
    return torch.where((s > 0) & (s < tiny), torch.full_like(s, tiny), s)


def _normalize(x, s):
    """x * (1 / s): the states encode with the block's reciprocal, not a division; 0 where s == 0."""
    return torch.where(s > 0, x * (1 / torch.where(s > 0, s, torch.ones_like(s))), torch.zeros_like(x))


def splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def stochastic_round_to_bf16(x: torch.Tensor, step: int, tensor_index: int) -> torch.Tensor:
    with np.errstate(over="ignore"):
        key = splitmix64(np.array([(step * 0x100000001B3) % 2**64 ^ tensor_index], dtype=np.uint64))[0]
        r = (splitmix64(key ^ np.arange(x.numel(), dtype=np.uint64)) >> np.uint64(48)).astype(np.int64)
    bits = x.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    out = ((bits + torch.from_numpy(r)) >> 16) & 0xFFFF
    return out.to(torch.int32).to(torch.int16).view(torch.bfloat16)


class Layout:
    """Which maps / scales a parameter's state uses."""

    def __init__(self, fmt: str, shape, block_size: int):
        n = math.prod(shape)
        self.fmt, self.n, self.block_size = fmt, n, block_size
        self.rank1 = False
        if fmt == "4bit" and len(shape) >= 2:
            rows, cols = shape[0], n // shape[0]
            self.rank1 = rows + cols <= n // block_size
            self.rows, self.cols = rows, cols


def decode(layout: Layout, codes_m, scale_m, codes_v, scale_v):
    n, B = layout.n, layout.block_size
    if layout.fmt == "fp8":
        return (codes_m.float() * per_element(scale_m, n, B), codes_v.float() * per_element(scale_v, n, B))
    if layout.fmt == "8bit":
        mm, vm = dynamic_tree_map(8, True), dynamic_tree_map(8, False)
        return mm[codes_m.long()] * per_element(scale_m, n, B), vm[codes_v.long()] * per_element(scale_v, n, B)
    mm, vm = dynamic_tree_map(4, True), linear_map_without_zero(4)
    m = mm[unpack_nibbles(codes_m, n).long()] * per_element(scale_m, n, B)
    v_scale = rank1_scales(layout, scale_v) if layout.rank1 else per_element(scale_v, n, B)
    return m, vm[unpack_nibbles(codes_v, n).long()] * v_scale


def rank1_scales(layout: Layout, stats: torch.Tensor) -> torch.Tensor:
    r, c = stats[: layout.rows], stats[layout.rows :]
    return normal_scale(torch.minimum(r[:, None], c[None, :]).reshape(-1))


def encode(layout: Layout, m: torch.Tensor, v: torch.Tensor):
    """New (codes_m, scale_m, codes_v, scale_v) of the updated flat moments."""
    n, B = layout.n, layout.block_size
    am = blocks(m.abs(), B).amax(1)
    av = blocks(v.abs(), B).amax(1)
    if layout.fmt == "fp8":
        sm, sv = normal_scale(am / 448), normal_scale(av / 448)

        def cast(x, s):
            return _normalize(x, per_element(s, n, B)).clamp(-448, 448).to(torch.float8_e4m3fn)

        return cast(m, sm), sm, cast(v, sv), sv
    if layout.fmt == "8bit":
        mm, vm = dynamic_tree_map(8, True), dynamic_tree_map(8, False)
        am, av = normal_scale(am), normal_scale(av)
        cm = nearest_codes(_normalize(m, per_element(am, n, B)), mm)
        cv = nearest_codes(_normalize(v, per_element(av, n, B)), vm)
        return cm, am, cv, av
    mm, vm = dynamic_tree_map(4, True), linear_map_without_zero(4)
    am, av = normal_scale(am), normal_scale(av)
    cm = pack_nibbles(nearest_codes(_normalize(m, per_element(am, n, B)), mm))
    if layout.rank1:
        vv = v.view(layout.rows, layout.cols)
        stats = torch.cat([vv.amax(1), vv.amax(0)])
        cv = pack_nibbles(nearest_codes(_normalize(v, rank1_scales(layout, stats)), vm))
        return cm, am, cv, stats
    cv = pack_nibbles(nearest_codes(_normalize(v, per_element(av, n, B)), vm))
    return cm, am, cv, av


def reference_step(fmt, block_size, param, grad, state, lr, betas, eps, wd, tensor_index=0, stochastic=False):
    """(new param, new state dict) after one step from `state` (tensors are not modified)."""
    layout = Layout(fmt, tuple(param.shape), block_size)
    step = int(state["step"].item()) + 1
    b1, b2 = betas
    if state["exp_avg"].dtype == torch.float32:
        m, v = state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1)
    else:
        m, v = decode(layout, state["exp_avg"], state["exp_avg_scale"], state["exp_avg_sq"], state["exp_avg_sq_scale"])
    g = grad.reshape(-1).float()
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    m = m + f32(1 - b1) * (g - m)
    v = f32(b2) * v + (f32(1 - b2) * g) * g
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    denom = torch.sqrt(v) / f32(math.sqrt(bc2)) + f32(eps)
    p = param.reshape(-1).float() * f32(1 - lr * wd) - f32(lr / bc1) * (m / denom)
    if param.dtype == torch.bfloat16:
        p = stochastic_round_to_bf16(p, step, tensor_index) if stochastic else p.to(torch.bfloat16)
    new = {"step": torch.tensor(float(step))}
    if state["exp_avg"].dtype == torch.float32:
        new.update(exp_avg=m.view(param.shape), exp_avg_scale=state["exp_avg_scale"], exp_avg_sq=v.view(param.shape),
                   exp_avg_sq_scale=state["exp_avg_sq_scale"])
    else:
        cm, sm, cv, sv = encode(layout, m, v)
        new.update(exp_avg=cm, exp_avg_scale=sm, exp_avg_sq=cv, exp_avg_sq_scale=sv)
    return p.view(param.shape), new
