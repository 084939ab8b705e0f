// Argument checks and output shapes of the affine ops, shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <string>
#include <vector>

#include <lowbit/core/affine_quant.h>

namespace lowbit::ops {

// The blocked shape sizes[d] / block_size[d] (symbolic sizes allowed, for the Meta kernels).
inline std::vector<c10::SymInt> affine_qparams_shape(c10::SymIntArrayRef sizes, c10::IntArrayRef block_size) {
  TORCH_CHECK(block_size.size() == sizes.size(), "affine quantization: block_size ", block_size,
              " must have one entry per input dim (input has ", sizes.size(), " dims)");
  std::vector<c10::SymInt> shape;
  for (size_t d = 0; d < sizes.size(); ++d) {
    TORCH_CHECK(block_size[d] >= 1, "affine quantization: block_size entries must be >= 1, got ", block_size);
    // Checked here too so the Meta kernels reject what the CPU / CUDA kernels reject.
    TORCH_SYM_CHECK((sizes[d] % block_size[d]).sym_eq(0), "affine quantization: block_size ", block_size,
                    " does not divide input shape ", sizes, " (dim ", d, ")");
    shape.push_back(sizes[d] / block_size[d]);
  }
  return shape;
}

inline at::ScalarType affine_storage_dtype(const core::QuantRange& r) { return r.is_signed ? at::kChar : at::kByte; }

inline at::ScalarType zero_point_dtype(core::ZeroPointDomain d) {
  return d == core::ZeroPointDomain::Int ? at::kInt : at::kFloat;
}

inline void check_float_input(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf ||
                  x.scalar_type() == at::kDouble,
              op, ": input dtype ", x.scalar_type(),
              " is not supported; allowed: torch.float32, torch.bfloat16, torch.float16, torch.float64");
}

// scale / zero_point must hold one value per block.
inline void check_qparams(const at::Tensor& input, c10::IntArrayRef block_size, const at::Tensor& scale,
                          const at::Tensor& zero_point, const char* op) {
  const std::vector<c10::SymInt> expected = affine_qparams_shape(input.sym_sizes(), block_size);
  c10::SymInt blocks = 1;
  for (const auto& s : expected) blocks = blocks * s;
  TORCH_SYM_CHECK(scale.sym_numel().sym_eq(blocks).sym_and(zero_point.sym_numel().sym_eq(blocks)), op, ": scale (", scale.sym_sizes(),
              ") and zero_point (", zero_point.sym_sizes(), ") must hold one value per block, i.e. shape ",
              c10::SymIntArrayRef(expected));
  TORCH_CHECK(at::isFloatingType(scale.scalar_type()), op, ": scale must be floating, got ", scale.scalar_type());
  TORCH_CHECK(scale.device() == input.device() && zero_point.device() == input.device(), op,
              ": input, scale and zero_point must be on one device, got ", input.device(), ", ", scale.device(), ", ",
              zero_point.device());
}

// dequantize_affine's codes must be stored in the qdtype's storage dtype (int8 / uint8).
inline void check_affine_data_dtype(const at::Tensor& data, const core::QuantRange& r, c10::string_view qdtype) {
  TORCH_CHECK(data.scalar_type() == affine_storage_dtype(r), "dequantize_affine: data for qdtype '", qdtype,
              "' must be ", affine_storage_dtype(r), ", got ", data.scalar_type());
}

inline void check_domain_mapping(core::ZeroPointDomain domain, bool symmetric) {
  TORCH_CHECK(!(domain == core::ZeroPointDomain::Float && symmetric),
              "affine quantization: zero_point_domain 'float' goes with mapping 'asymmetric' only");
}

// The parsed arguments of one affine op. The parse_*_args functions run every check of their op in
// one order, so the Meta, CPU and CUDA kernels reject the same inputs with the same message.
struct AffineArgs {
  core::QuantRange range;
  core::ZeroPointDomain domain;
  bool symmetric = false;  // choose_qparams_affine's mapping; unused by the other two ops
};

inline AffineArgs parse_choose_qparams_args(const at::Tensor& input, c10::string_view qdtype,
                                            c10::string_view mapping, c10::string_view zero_point_domain) {
  check_float_input(input, "choose_qparams_affine");
  const core::QuantRange range = core::parse_qdtype(std::string(qdtype));
  const bool symmetric = core::parse_symmetric(std::string(mapping));
  const core::ZeroPointDomain domain = core::parse_zero_point_domain(std::string(zero_point_domain));
  check_domain_mapping(domain, symmetric);
  return {range, domain, symmetric};
}

inline AffineArgs parse_quantize_args(const at::Tensor& input, c10::IntArrayRef block_size, const at::Tensor& scale,
                                      const at::Tensor& zero_point, c10::string_view qdtype,
                                      c10::string_view zero_point_domain) {
  check_float_input(input, "quantize_affine");
  check_qparams(input, block_size, scale, zero_point, "quantize_affine");
  const core::QuantRange range = core::parse_qdtype(std::string(qdtype));
  return {range, core::parse_zero_point_domain(std::string(zero_point_domain))};
}

inline AffineArgs parse_dequantize_args(const at::Tensor& data, c10::IntArrayRef block_size, const at::Tensor& scale,
                                        const at::Tensor& zero_point, c10::string_view qdtype,
                                        c10::string_view zero_point_domain) {
  check_qparams(data, block_size, scale, zero_point, "dequantize_affine");
  const core::QuantRange range = core::parse_qdtype(std::string(qdtype));
  const core::ZeroPointDomain domain = core::parse_zero_point_domain(std::string(zero_point_domain));
  check_affine_data_dtype(data, range, qdtype);
  return {range, domain};
}

}  // namespace lowbit::ops
