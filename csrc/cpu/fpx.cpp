// CPU reference kernels of lowbit::fpx_encode / fpx_decode (per element: core/fpx_format.h).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/fpx_checks.h>

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

at::Tensor fpx_encode_cpu(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  ops::check_fpx_encode_args(x, ebits, mbits);
  const at::Tensor xf = x.contiguous().to(at::kFloat);
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(at::kByte));
  const float* in = xf.data_ptr<float>();
  uint8_t* codes = out.data_ptr<uint8_t>();
  at::parallel_for(0, xf.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      codes[i] = core::fpx_encode_value(in[i], static_cast<int>(ebits), static_cast<int>(mbits));
  });
  return out;
}

at::Tensor fpx_decode_cpu(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  ops::check_fpx_decode_args(codes, ebits, mbits, dtype);
  const at::Tensor c = codes.contiguous();
  const uint8_t* in = c.data_ptr<uint8_t>();
  const int nbits = static_cast<int>(1 + ebits + mbits);
  // The reference is strict about its input: a code with bits above the format's width is not
  // a code of this format.
  for (int64_t i = 0; i < c.numel(); ++i) {
    TORCH_CHECK(in[i] >> nbits == 0, "fpx_decode: code ", static_cast<int>(in[i]), " at flat index ", i,
                " does not fit fp", nbits, "_e", ebits, "m", mbits, " (", nbits, " bits)");
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
