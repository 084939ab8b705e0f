// CPU kernels of the affine quantization ops. The scalar loops below are the reference (per
// element: core/affine_quant.h, any block_size through core::BlockIndexer); the vectorized kernels
// (csrc/cpu/vec/affine.cpp) are the default path wherever the blocks are contiguous runs (per
// tensor, per row, per group of the last dim) and the dtypes are float32 / bfloat16 / float16,
// and equal the reference bit for bit.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/affine_checks.h>

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

bool is_vec_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf; }

// The vectorized kernels and the runs they work on, when they apply to this call.
const vec::Kernels* vec_kernels_for(c10::IntArrayRef sizes, c10::IntArrayRef block_size, int64_t numel,
                                    const ops::AffineArgs& args, vec::AffineRuns* runs) {
  const vec::Kernels* k = vec::kernels();
  const int64_t run = core::contiguous_block_numel(sizes, block_size);
  if (k == nullptr || run <= 0) return nullptr;
  *runs = {numel / run, run, args.range, args.domain};
  return k;
}

float eps_or_default(std::optional<double> eps) {
  return static_cast<float>(eps.value_or(std::numeric_limits<float>::epsilon()));
}

std::tuple<at::Tensor, at::Tensor> choose_qparams_affine_cpu(const at::Tensor& input, at::IntArrayRef block_size,
                                                             c10::string_view qdtype, c10::string_view mapping,
                                                             c10::string_view zero_point_domain,
                                                             std::optional<double> eps,
                                                             std::optional<at::ScalarType> scale_dtype) {
  const ops::AffineArgs args =
      ops::parse_choose_qparams_args(input, qdtype, mapping, zero_point_domain, eps, scale_dtype);
  const core::BlockIndexer ix = core::make_block_indexer(input.sizes(), block_size);
  const auto shape = ops::affine_qparams_shape(input.sym_sizes(), block_size);
  at::Tensor scale = at::empty_symint(shape, input.options().dtype(at::kFloat));
  at::Tensor zero_point = at::empty_symint(shape, input.options().dtype(at::kFloat));
  float* s = scale.data_ptr<float>();
  float* zp = zero_point.data_ptr<float>();
  auto finish = [&] { return std::make_tuple(scale.to(scale_dtype.value_or(at::kFloat)),
                                             zero_point.to(ops::zero_point_dtype(args.domain))); };

  vec::AffineRuns runs;
  if (const vec::Kernels* k = vec_kernels_for(input.sizes(), block_size, input.numel(), args, &runs);
      k && is_vec_dtype(input.scalar_type())) {
    const at::Tensor x = input.contiguous();
    k->affine_choose_qparams(x.const_data_ptr(), x.scalar_type(), runs, args.symmetric, eps_or_default(eps), s, zp);
    return finish();
  }

  const at::Tensor x = input.contiguous().to(at::kFloat);
  const float* in = x.data_ptr<float>();
  const int64_t num_blocks = scale.numel();
  std::vector<float> mins(num_blocks, std::numeric_limits<float>::infinity());
  std::vector<float> maxs(num_blocks, -std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t b = ix.block_of(i);
    mins[b] = fminf(mins[b], core::affine_min_term(in[i]));
    maxs[b] = core::max_propagating_nan(maxs[b], core::affine_max_term(in[i]));
  }
  for (int64_t b = 0; b < num_blocks; ++b) {
    core::affine_qparams_from_min_max(mins[b], maxs[b], args.range, args.symmetric, args.domain, eps_or_default(eps),
                                      &s[b], &zp[b]);
  }
  return finish();
}

at::Tensor quantize_affine_cpu(const at::Tensor& input, at::IntArrayRef block_size, const at::Tensor& scale,
                               const at::Tensor& zero_point, c10::string_view qdtype,
                               c10::string_view zero_point_domain) {
  const ops::AffineArgs args =
      ops::parse_quantize_args(input, block_size, scale, zero_point, qdtype, zero_point_domain);
  const core::BlockIndexer ix = core::make_block_indexer(input.sizes(), block_size);
  const at::Tensor s = scale.contiguous().to(at::kFloat);
  const at::Tensor zp = zero_point.contiguous().to(at::kFloat);
  const float* sp = s.data_ptr<float>();
  const float* zpp = zp.data_ptr<float>();

  vec::AffineRuns runs;
  if (const vec::Kernels* k = vec_kernels_for(input.sizes(), block_size, input.numel(), args, &runs);
      k && is_vec_dtype(input.scalar_type())) {
    const at::Tensor x = input.contiguous();
    at::Tensor out = at::empty(input.sizes(), input.options().dtype(ops::affine_storage_dtype(args.range)));
    k->affine_quantize(x.const_data_ptr(), x.scalar_type(), runs, sp, zpp, static_cast<uint8_t*>(out.data_ptr()));
    return out;
  }

  const at::Tensor x = input.contiguous().to(at::kFloat);
  at::Tensor out = at::empty(input.sizes(), input.options().dtype(at::kInt));
  const float* in = x.data_ptr<float>();
  int32_t* q = out.data_ptr<int32_t>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = ix.block_of(i);
      q[i] = core::affine_quantize_value(in[i], sp[b], zpp[b], args.range, args.domain);
    }
  });
  return out.to(ops::affine_storage_dtype(args.range));
}

at::Tensor dequantize_affine_cpu(const at::Tensor& data, at::IntArrayRef block_size, const at::Tensor& scale,
                                 const at::Tensor& zero_point, c10::string_view qdtype,
                                 c10::string_view zero_point_domain, at::ScalarType output_dtype) {
  const ops::AffineArgs args =
      ops::parse_dequantize_args(data, block_size, scale, zero_point, qdtype, zero_point_domain, output_dtype);
  const core::QuantRange range = args.range;
  const core::BlockIndexer ix = core::make_block_indexer(data.sizes(), block_size);
  const at::Tensor s = scale.contiguous().to(at::kFloat);
  const at::Tensor zp = zero_point.contiguous().to(at::kFloat);
  const float* sp = s.data_ptr<float>();
  const float* zpp = zp.data_ptr<float>();

  vec::AffineRuns runs;
  if (const vec::Kernels* k = vec_kernels_for(data.sizes(), block_size, data.numel(), args, &runs);
      k && is_vec_dtype(output_dtype)) {
    const at::Tensor q = data.contiguous();
    at::Tensor out = at::empty(data.sizes(), data.options().dtype(output_dtype));
    const auto* codes = static_cast<const uint8_t*>(q.const_data_ptr());
    const int64_t bad = k->affine_dequantize(codes, runs, sp, zpp, out.data_ptr(), output_dtype);
    if (bad >= 0) {
      const int32_t code = range.is_signed ? static_cast<int8_t>(codes[bad]) : codes[bad];
      ops::throw_affine_code_out_of_range(bad, code, range, qdtype);
    }
    return out;
  }

  const at::Tensor q = data.contiguous().to(at::kInt);
  const int32_t* qp = q.data_ptr<int32_t>();
  for (int64_t i = 0; i < q.numel(); ++i) {
    if (qp[i] < range.qmin || qp[i] > range.qmax) ops::throw_affine_code_out_of_range(i, qp[i], range, qdtype);
  }
  at::Tensor out = at::empty(data.sizes(), data.options().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  at::parallel_for(0, q.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = ix.block_of(i);
      o[i] = core::affine_dequantize_value(qp[i], sp[b], zpp[b], range, args.domain);
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
