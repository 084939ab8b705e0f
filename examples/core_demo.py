"""A tour of lowbit's core ops from Python: each format's error on a real-looking weight."""

import torch

import lowbit


def sqnr_db(ref: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB."""
    return (20 * torch.log10(ref.norm() / (ref - approx).norm())).item()


def main() -> None:
    torch.manual_seed(0)
    w = torch.randn(1024, 1024) * 0.02
    print(f"lowbit {lowbit.__version__}: {lowbit.build_info()}")
    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        for g in ("tensor", "row"):
            data, scale = lowbit.core.cast_to_float8(w, dtype, g)
            print(f"{str(dtype):24} {g:6}  SQNR {sqnr_db(w, data.float() * scale):5.1f} dB")
    for ebits, mbits in ((3, 2), (2, 3), (2, 1)):
        s = w.abs().amax() / lowbit.core.fpx_decode(torch.tensor([0x7F >> (7 - ebits - mbits)], dtype=torch.uint8),
                                                     ebits, mbits)
        codes = lowbit.core.fpx_encode(w / s, ebits, mbits)
        packed = lowbit.core.pack_uintx(codes.flatten(), 1 + ebits + mbits)
        print(f"fp{1 + ebits + mbits}_e{ebits}m{mbits}             tensor  SQNR "
              f"{sqnr_db(w, lowbit.core.fpx_decode(codes, ebits, mbits) * s):5.1f} dB, {packed.numel() / w.numel():.3f} B/value")
    for qdtype, group in (("int8", 1024), ("int4", 128), ("uint4", 64)):
        block = (1, group)
        mapping = "symmetric" if qdtype.startswith("int") else "asymmetric"
        scale, zp = lowbit.core.choose_qparams_affine(w, block, qdtype, mapping)
        q = lowbit.core.quantize_affine(w, block, scale, zp, qdtype)
        deq = lowbit.core.dequantize_affine(q, block, scale, zp, qdtype)
        print(f"{qdtype:5} group {group:<5} {mapping:10}  SQNR {sqnr_db(w, deq):5.1f} dB")


if __name__ == "__main__":
    main()
