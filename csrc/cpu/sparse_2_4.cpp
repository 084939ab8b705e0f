// CPU reference kernels of lowbit::compress_2_4 / decompress_2_4 (format: core/sparse_2_4_format.h).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <lowbit/core/sparse_2_4_format.h>
#include <lowbit/ops/sparse_2_4_checks.h>

namespace lowbit::cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> compress_2_4_cpu(const at::Tensor& x) {
  ops::check_compress_2_4_args(x);
  const at::Tensor xc = x.contiguous();
  const int64_t rows = x.size(0), cols = x.size(1);
  at::Tensor values = at::empty({rows, cols / 2}, x.options());
  at::Tensor meta = at::empty({rows, cols / 8}, x.options().dtype(at::kByte));
  // The reference is strict: a group with more than 2 nonzeros is not 2:4.
  const int64_t worst = x.numel() == 0 ? 0 : xc.ne(0).reshape({-1, 4}).sum(1).max().item<int64_t>();
  TORCH_CHECK(worst <= 2, "compress_2_4: the input is not 2:4 along its rows (a group of 4 holds ", worst,
              " nonzeros); prune it with prune_2_4 first");
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kBFloat16, at::kHalf, at::kChar, x.scalar_type(), "compress_2_4_cpu", [&] {
    const scalar_t* in = xc.const_data_ptr<scalar_t>();
    scalar_t* out = values.data_ptr<scalar_t>();
    uint8_t* codes = meta.data_ptr<uint8_t>();
    at::parallel_for(0, rows * cols / 8, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t pair = begin; pair < end; ++pair) {  // two groups of 4 -> 4 values, one byte
        uint8_t byte = 0;
        for (int h = 0; h < 2; ++h) {
          const scalar_t* g = in + 8 * pair + 4 * h;
          uint32_t present = 0;
          for (int i = 0; i < 4; ++i) present |= static_cast<uint32_t>(g[i] != scalar_t(0)) << i;
          const uint32_t code = core::sparse_2_4_code(present);
          out[4 * pair + 2 * h] = g[core::sparse_2_4_pos0(code)];
          out[4 * pair + 2 * h + 1] = g[core::sparse_2_4_pos1(code)];
          byte |= static_cast<uint8_t>(code << (4 * h));
        }
        codes[pair] = byte;
      }
    });
  });
  return {values, meta};
}

at::Tensor decompress_2_4_cpu(const at::Tensor& values, const at::Tensor& meta) {
  ops::check_decompress_2_4_args(values, meta);
  const at::Tensor vc = values.contiguous(), mc = meta.contiguous();
  const int64_t rows = values.size(0), cols = values.size(1) * 2;
  at::Tensor out = at::zeros({rows, cols}, values.options());
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kBFloat16, at::kHalf, at::kChar, values.scalar_type(), "decompress_2_4_cpu", [&] {
    const scalar_t* in = vc.const_data_ptr<scalar_t>();
    const uint8_t* codes = mc.const_data_ptr<uint8_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows * cols / 8, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t pair = begin; pair < end; ++pair) {
        for (int h = 0; h < 2; ++h) {
          const uint32_t code = (codes[pair] >> (4 * h)) & 0xFu;
          scalar_t* g = o + 8 * pair + 4 * h;
          g[core::sparse_2_4_pos0(code)] = in[4 * pair + 2 * h];
          g[core::sparse_2_4_pos1(code)] = in[4 * pair + 2 * h + 1];
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("compress_2_4", &compress_2_4_cpu);
  m.impl("decompress_2_4", &decompress_2_4_cpu);
}

}  // namespace lowbit::cpu
