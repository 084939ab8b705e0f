// Argument checks and output shapes of the affine ops, shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>
#include <vector>

#include <lowbit/core/affine_quant.h>
#include <lowbit/ops/dtype_name.h>

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
  check_dtype(x.scalar_type(), kFloatDtypes, op, "input dtype");
}

// The sizes with the 1s dropped (a scale of shape (N,) serves blocks shaped (N, 1)), or nothing
// when a size is symbolic (Meta tracing with dynamic shapes: the numel check must do there).
inline std::optional<std::vector<int64_t>> squeezed_sizes(c10::SymIntArrayRef sizes) {
  std::vector<int64_t> out;
  for (const auto& s : sizes) {
    const auto v = s.maybe_as_int();
    if (!v.has_value()) return std::nullopt;
    if (*v != 1) out.push_back(*v);
  }
  return out;
}

// scale / zero_point hold one value per block, in the blocked shape input.shape / block_size
// (size-1 dims may be left out); scale is floating; zero_point is an integer tensor for the "int"
// domain (what choose_qparams_affine returns: int32) and floating for "float".
inline void check_qparams(const at::Tensor& input, c10::IntArrayRef block_size, const at::Tensor& scale,
                          const at::Tensor& zero_point, core::ZeroPointDomain domain, const char* op) {
  const std::vector<c10::SymInt> expected = affine_qparams_shape(input.sym_sizes(), block_size);
  c10::SymInt blocks = 1;
  for (const auto& s : expected) blocks = blocks * s;
  TORCH_SYM_CHECK(scale.sym_numel().sym_eq(blocks).sym_and(zero_point.sym_numel().sym_eq(blocks)), op, ": scale (", scale.sym_sizes(),
              ") and zero_point (", zero_point.sym_sizes(), ") must hold one value per block, i.e. shape ",
              c10::SymIntArrayRef(expected));
  const auto want = squeezed_sizes(expected);
  for (const at::Tensor* t : {&scale, &zero_point}) {
    const auto got = squeezed_sizes(t->sym_sizes());
    TORCH_CHECK(!want || !got || *want == *got, op, ": ", t == &scale ? "scale" : "zero_point", " has shape ",
                t->sym_sizes(), ", which does not lay out the blocks of block_size ", block_size, " over input shape ",
                input.sym_sizes(), "; expected shape ", c10::SymIntArrayRef(expected));
  }
  check_dtype(scale.scalar_type(), kFloatDtypes, op, "scale dtype");
  if (domain == core::ZeroPointDomain::Int) {
    TORCH_CHECK(at::isIntegralType(zero_point.scalar_type(), /*includeBool=*/false), op,
                ": zero_point for zero_point_domain 'int' must be an integer tensor (choose_qparams_affine gives "
                "torch.int32), got ", torch_dtype_name(zero_point.scalar_type()));
  } else {
    check_dtype(zero_point.scalar_type(), kFloatDtypes, op, "zero_point dtype for zero_point_domain 'float':");
  }
  TORCH_CHECK(scale.device() == input.device() && zero_point.device() == input.device(), op,
              ": input, scale and zero_point must be on one device, got ", input.device(), ", ", scale.device(), ", ",
              zero_point.device());
}

// dequantize_affine's codes must be stored in the qdtype's storage dtype (int8 / uint8).
inline void check_affine_data_dtype(const at::Tensor& data, const core::QuantRange& r, c10::string_view qdtype) {
  TORCH_CHECK(data.scalar_type() == affine_storage_dtype(r), "dequantize_affine: data for qdtype '", qdtype,
              "' must be ", torch_dtype_name(affine_storage_dtype(r)), ", got ", torch_dtype_name(data.scalar_type()));
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
                                            c10::string_view mapping, c10::string_view zero_point_domain,
                                            std::optional<double> eps, std::optional<at::ScalarType> scale_dtype) {
  check_float_input(input, "choose_qparams_affine");
  const core::QuantRange range = core::parse_qdtype(std::string(qdtype));
  const bool symmetric = core::parse_symmetric(std::string(mapping));
  const core::ZeroPointDomain domain = core::parse_zero_point_domain(std::string(zero_point_domain));
  check_domain_mapping(domain, symmetric);
  // The smallest scale: a positive float32 (a zero or negative one would divide by zero).
  TORCH_CHECK(!eps.has_value() || (*eps > 0.0 && static_cast<float>(*eps) > 0.0f &&
                                   static_cast<float>(*eps) <= core::kFloat32Max),
              "choose_qparams_affine: eps must be a positive, finite float32, got ", eps.value_or(0.0));
  if (scale_dtype.has_value()) check_dtype(*scale_dtype, kFloatDtypes, "choose_qparams_affine", "scale_dtype");
  return {range, domain, symmetric};
}

inline AffineArgs parse_quantize_args(const at::Tensor& input, c10::IntArrayRef block_size, const at::Tensor& scale,
                                      const at::Tensor& zero_point, c10::string_view qdtype,
                                      c10::string_view zero_point_domain) {
  check_float_input(input, "quantize_affine");
  const core::QuantRange range = core::parse_qdtype(std::string(qdtype));
  const core::ZeroPointDomain domain = core::parse_zero_point_domain(std::string(zero_point_domain));
  check_qparams(input, block_size, scale, zero_point, domain, "quantize_affine");
  return {range, domain};
}

inline AffineArgs parse_dequantize_args(const at::Tensor& data, c10::IntArrayRef block_size, const at::Tensor& scale,
                                        const at::Tensor& zero_point, c10::string_view qdtype,
                                        c10::string_view zero_point_domain, at::ScalarType output_dtype) {
  const core::QuantRange range = core::parse_qdtype(std::string(qdtype));
  const core::ZeroPointDomain domain = core::parse_zero_point_domain(std::string(zero_point_domain));
  check_affine_data_dtype(data, range, qdtype);
  check_qparams(data, block_size, scale, zero_point, domain, "dequantize_affine");
  check_dtype(output_dtype, kFloatDtypes, "dequantize_affine", "output_dtype");
  return {range, domain};
}

// fake_quantize_affine: choose_qparams_affine's checks plus the block layout (its Meta kernel
// runs no kernel that would check it).
inline AffineArgs parse_fake_quantize_args(const at::Tensor& input, c10::IntArrayRef block_size,
                                           c10::string_view qdtype, c10::string_view mapping,
                                           c10::string_view zero_point_domain) {
  check_dtype(input.scalar_type(), kFloatDtypes, "fake_quantize_affine", "input dtype");
  const AffineArgs args = parse_choose_qparams_args(input, qdtype, mapping, zero_point_domain, std::nullopt,
                                                    std::nullopt);
  (void)affine_qparams_shape(input.sym_sizes(), block_size);
  return args;
}

// The codes of an int8 / uint8 storage tensor that lie outside [qmin, qmax] (int4 codes must fit
// -8..7): dequantize_affine on the CPU rejects them, naming the first; on CUDA they dequantize
// to NaN (an error would need a host sync).
[[noreturn]] inline void throw_affine_code_out_of_range(int64_t index, int32_t code, const core::QuantRange& r,
                                           c10::string_view qdtype) {
  TORCH_CHECK(false, "dequantize_affine: code ", code, " at flat index ", index, " is outside qdtype '", qdtype,
              "' (allowed: ", r.qmin, "..", r.qmax, ")");
}

}  // namespace lowbit::ops
