// CPU kernels of lowbit::fpx_encode / fpx_decode. The scalar loops below are the reference (per
// element: core/fpx_format.h); the vectorized kernels (csrc/cpu/vec/fpx.cpp) are the default path
// and equal them bit for bit.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/fpx_checks.h>

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

at::Tensor fpx_encode_cpu(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  ops::check_fpx_encode_args(x, ebits, mbits);
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(at::kByte));
  uint8_t* codes = out.data_ptr<uint8_t>();
  if (const vec::Kernels* k = vec::kernels()) {
    const at::Tensor xc = x.contiguous();
    k->fpx_encode(xc.const_data_ptr(), xc.scalar_type(), xc.numel(), static_cast<int>(ebits), static_cast<int>(mbits),
                  codes);
    return out;
  }
  const at::Tensor xf = x.contiguous().to(at::kFloat);
  const float* in = xf.data_ptr<float>();
  at::parallel_for(0, xf.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      codes[i] = core::fpx_encode_value(in[i], static_cast<int>(ebits), static_cast<int>(mbits));
  });
  return out;
}

[[noreturn]] void throw_code_does_not_fit(int64_t i, uint8_t code, int64_t ebits, int64_t mbits) {
  const int64_t nbits = 1 + ebits + mbits;
  TORCH_CHECK(false, "fpx_decode: code ", static_cast<int>(code), " at flat index ", i, " does not fit fp", nbits, "_e",
              ebits, "m", mbits, " (", nbits, " bits)");
}

at::Tensor fpx_decode_cpu(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  ops::check_fpx_decode_args(codes, ebits, mbits, dtype);
  const at::Tensor c = codes.contiguous();
  const uint8_t* in = c.data_ptr<uint8_t>();
  if (const vec::Kernels* k = vec::kernels()) {
    at::Tensor out = at::empty(codes.sizes(), codes.options().dtype(dtype));
    const int64_t bad = k->fpx_decode(in, c.numel(), static_cast<int>(ebits), static_cast<int>(mbits), out.data_ptr(),
                                      dtype);
    if (bad >= 0) throw_code_does_not_fit(bad, in[bad], ebits, mbits);
    return out;
  }
  const int nbits = static_cast<int>(1 + ebits + mbits);
  // The reference is strict about its input: a code with bits above the format's width is not
  // a code of this format.
  for (int64_t i = 0; i < c.numel(); ++i) {
    if (in[i] >> nbits) throw_code_does_not_fit(i, in[i], ebits, mbits);
  }
  at::Tensor out = at::empty(codes.sizes(), codes.options().dtype(at::kFloat));
  float* values = out.data_ptr<float>();
  at::parallel_for(0, c.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      values[i] = core::fpx_decode_value(in[i], static_cast<int>(ebits), static_cast<int>(mbits));
  });
  return dtype == at::kFloat ? out : out.to(dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("fpx_encode", &fpx_encode_cpu);
  m.impl("fpx_decode", &fpx_decode_cpu);
}

}  // namespace lowbit::cpu
