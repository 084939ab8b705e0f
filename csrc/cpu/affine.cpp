// CPU reference kernels of the affine quantization ops (per element: core/affine_quant.h).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include <lowbit/ops/affine_checks.h>

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

std::tuple<at::Tensor, at::Tensor> choose_qparams_affine_cpu(const at::Tensor& input, at::IntArrayRef block_size,
                                                             c10::string_view qdtype, c10::string_view mapping,
                                                             c10::string_view zero_point_domain,
                                                             std::optional<double> eps,
                                                             std::optional<at::ScalarType> scale_dtype) {
  const ops::AffineArgs args = ops::parse_choose_qparams_args(input, qdtype, mapping, zero_point_domain);
  const core::QuantRange range = args.range;
  const core::ZeroPointDomain domain = args.domain;
  const bool symmetric = args.symmetric;
  const core::BlockIndexer ix = core::make_block_indexer(input.sizes(), block_size);
  const auto shape = ops::affine_qparams_shape(input.sym_sizes(), block_size);

  const at::Tensor x = input.contiguous().to(at::kFloat);
  const float* in = x.data_ptr<float>();
  int64_t num_blocks = 1;
  for (const auto& s : shape) num_blocks *= s.expect_int();
  std::vector<float> mins(num_blocks, std::numeric_limits<float>::infinity());
  std::vector<float> maxs(num_blocks, -std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t b = ix.block_of(i);
    mins[b] = fminf(mins[b], in[i]);
    maxs[b] = fmaxf(maxs[b], in[i]);
  }

  at::Tensor scale = at::empty_symint(shape, input.options().dtype(at::kFloat));
  at::Tensor zero_point = at::empty_symint(shape, input.options().dtype(at::kFloat));
  float* s = scale.data_ptr<float>();
  float* zp = zero_point.data_ptr<float>();
  const float eps_value = static_cast<float>(eps.value_or(std::numeric_limits<float>::epsilon()));
  for (int64_t b = 0; b < num_blocks; ++b)
    core::affine_qparams_from_min_max(mins[b], maxs[b], range, symmetric, domain, eps_value, &s[b], &zp[b]);
  return {scale.to(scale_dtype.value_or(at::kFloat)), zero_point.to(ops::zero_point_dtype(domain))};
}

at::Tensor quantize_affine_cpu(const at::Tensor& input, at::IntArrayRef block_size, const at::Tensor& scale,
                               const at::Tensor& zero_point, c10::string_view qdtype,
                               c10::string_view zero_point_domain) {
  const ops::AffineArgs args =
      ops::parse_quantize_args(input, block_size, scale, zero_point, qdtype, zero_point_domain);
  const core::QuantRange range = args.range;
  const core::ZeroPointDomain domain = args.domain;
  const core::BlockIndexer ix = core::make_block_indexer(input.sizes(), block_size);

  const at::Tensor x = input.contiguous().to(at::kFloat);
  const at::Tensor s = scale.contiguous().to(at::kFloat);
  const at::Tensor zp = zero_point.contiguous().to(at::kFloat);
  at::Tensor out = at::empty(input.sizes(), input.options().dtype(at::kInt));
  const float* in = x.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  const float* zpp = zp.data_ptr<float>();
  int32_t* q = out.data_ptr<int32_t>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = ix.block_of(i);
      q[i] = core::affine_quantize_value(in[i], sp[b], zpp[b], range, domain);
    }
  });
  return out.to(ops::affine_storage_dtype(range));
}

at::Tensor dequantize_affine_cpu(const at::Tensor& data, at::IntArrayRef block_size, const at::Tensor& scale,
                                 const at::Tensor& zero_point, c10::string_view qdtype,
                                 c10::string_view zero_point_domain, at::ScalarType output_dtype) {
  const ops::AffineArgs args =
      ops::parse_dequantize_args(data, block_size, scale, zero_point, qdtype, zero_point_domain);
  const core::QuantRange range = args.range;
  const core::ZeroPointDomain domain = args.domain;
  const core::BlockIndexer ix = core::make_block_indexer(data.sizes(), block_size);

  const at::Tensor q = data.contiguous().to(at::kInt);
  const at::Tensor s = scale.contiguous().to(at::kFloat);
  const at::Tensor zp = zero_point.contiguous().to(at::kFloat);
  at::Tensor out = at::empty(data.sizes(), data.options().dtype(at::kFloat));
  const int32_t* qp = q.data_ptr<int32_t>();
  const float* sp = s.data_ptr<float>();
  const float* zpp = zp.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, q.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = ix.block_of(i);
      o[i] = core::affine_dequantize_value(qp[i], sp[b], zpp[b], range, domain);
    }
  });
  return out.to(output_dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("choose_qparams_affine", &choose_qparams_affine_cpu);
  m.impl("quantize_affine", &quantize_affine_cpu);
  m.impl("dequantize_affine", &dequantize_affine_cpu);
}

}  // namespace lowbit::cpu
