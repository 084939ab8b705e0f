// CPU kernels of lowbit::pack_uintx / unpack_uintx. The per-element loops below are the reference
// (core/bitstream.h: one packed byte or one code each); the vectorized kernels
// (csrc/cpu/vec/bit_packing.cpp) are the default path and write the same stream.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/core/bitstream.h>
#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/bit_packing_checks.h>

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

[[noreturn]] void throw_code_does_not_fit(int64_t i, uint8_t code, int64_t bits) {
  TORCH_CHECK(false, "pack_uintx: code ", static_cast<int>(code), " at flat index ", i, " does not fit in ", bits,
              " bits (allowed: 0..", (1 << bits) - 1, ")");
}

at::Tensor pack_uintx_cpu(const at::Tensor& codes, int64_t bits) {
  ops::check_pack_uintx_args(codes, bits);
  const at::Tensor c = codes.contiguous();
  const uint8_t* in = c.data_ptr<uint8_t>();
  const int64_t n = c.numel();
  at::Tensor out = at::empty({core::packed_num_bytes(n, static_cast<int>(bits))}, codes.options());
  uint8_t* o = out.data_ptr<uint8_t>();
  if (const vec::Kernels* k = vec::kernels()) {
    const int64_t bad = k->pack_uintx(in, n, static_cast<int>(bits), o);
    if (bad >= 0) throw_code_does_not_fit(bad, in[bad], bits);
    return out;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (in[i] >> bits) throw_code_does_not_fit(i, in[i], bits);
  }
  at::parallel_for(0, out.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) o[j] = core::pack_byte(in, n, static_cast<int>(bits), j);
  });
  return out;
}

at::Tensor unpack_uintx_cpu(const at::Tensor& packed, int64_t bits, int64_t numel) {
  ops::check_unpack_uintx_args(packed, bits, c10::SymInt(numel));
  const at::Tensor p = packed.contiguous();
  const uint8_t* in = p.data_ptr<uint8_t>();
  at::Tensor out = at::empty({numel}, packed.options());
  uint8_t* o = out.data_ptr<uint8_t>();
  if (const vec::Kernels* k = vec::kernels()) {
    k->unpack_uintx(in, static_cast<int>(bits), numel, o);
    return out;
  }
  at::parallel_for(0, numel, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = core::unpack_code(in, static_cast<int>(bits), i);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("pack_uintx", &pack_uintx_cpu);
  m.impl("unpack_uintx", &unpack_uintx_cpu);
}

}  // namespace lowbit::cpu
