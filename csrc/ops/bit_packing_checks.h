// Argument checks of the bit packing ops, shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/ops/dtype_name.h>

namespace lowbit::ops {

inline void check_pack_bits(int64_t bits, const char* op) {
  TORCH_CHECK(bits >= 1 && bits <= 8, op, ": bits=", bits, " is not supported; allowed: 1..8");
}

inline void check_pack_uintx_args(const at::Tensor& codes, int64_t bits) {
  check_pack_bits(bits, "pack_uintx");
  check_dtype(codes.scalar_type(), {at::kByte}, "pack_uintx", "codes dtype");
}

inline void check_unpack_uintx_args(const at::Tensor& packed, int64_t bits, const c10::SymInt& numel) {
  check_pack_bits(bits, "unpack_uintx");
  check_dtype(packed.scalar_type(), {at::kByte}, "unpack_uintx", "packed dtype");
  TORCH_SYM_CHECK(numel.sym_ge(0), "unpack_uintx: numel must be >= 0, got ", numel);
  TORCH_SYM_CHECK((packed.sym_numel() * 8).sym_ge(numel * bits), "unpack_uintx: ", packed.sym_numel(),
                  " bytes hold at most ", packed.sym_numel() * 8 / bits, " codes of ", bits, " bits, asked for ",
                  numel);
}

}  // namespace lowbit::ops
