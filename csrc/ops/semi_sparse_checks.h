// Argument checks of lowbit::semi_sparse_mm and the semi-sparse training ops, shared by their
// Meta, CPU and CUDA paths.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <utility>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/semi_sparse_linear.h>

namespace lowbit::ops {

inline bool is_semi_sparse_float(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf;
}

inline void check_semi_sparse_mm_args(const at::Tensor& sparse, const at::Tensor& dense,
                                      const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(sparse.dim() == 2 && dense.dim() == 2, "semi_sparse_mm: sparse and dense must be 2-D, got shapes ",
              sparse.sym_sizes(), " and ", dense.sym_sizes());
  TORCH_SYM_CHECK(sparse.sym_size(1).sym_eq(dense.sym_size(0)), "semi_sparse_mm: inner dims differ: sparse is ",
                  sparse.sym_sizes(), ", dense is ", dense.sym_sizes());
  TORCH_SYM_CHECK((sparse.sym_size(1) % 4).sym_eq(0), "semi_sparse_mm: sparse's columns (", sparse.sym_size(1),
                  ") must be a multiple of 4 (2:4 groups along each row)");
  TORCH_CHECK(is_semi_sparse_float(sparse.scalar_type()), "semi_sparse_mm: dtype ", sparse.scalar_type(),
              " is not supported; allowed: torch.float32, torch.float64, torch.bfloat16, torch.float16");
  TORCH_CHECK(dense.scalar_type() == sparse.scalar_type(), "semi_sparse_mm: sparse and dense must have one dtype, got ",
              sparse.scalar_type(), " and ", dense.scalar_type());
  TORCH_CHECK(dense.device() == sparse.device(), "semi_sparse_mm: sparse and dense must be on one device, got ",
              sparse.device(), " and ", dense.device());
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1, "semi_sparse_mm: bias must be 1-D, got ", bias->sym_sizes());
    TORCH_SYM_CHECK(bias->sym_size(0).sym_eq(sparse.sym_size(0)), "semi_sparse_mm: bias has ", bias->sym_size(0),
                    " entries, sparse has ", sparse.sym_size(0), " rows");
    TORCH_CHECK(bias->scalar_type() == sparse.scalar_type() && bias->device() == sparse.device(),
                "semi_sparse_mm: bias must have sparse's dtype and device (", sparse.scalar_type(), ", ",
                sparse.device(), "), got ", bias->scalar_type(), ", ", bias->device());
  }
}

// Checks a training op's arguments (`op` names it in messages); returns (algorithm, gradient).
inline std::pair<core::PruneAlgorithm, core::SemiSparseGradient> check_semi_sparse_linear_args(
    const char* op, const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
    c10::string_view algorithm, c10::string_view gradient, bool activation) {
  const core::PruneAlgorithm algo = core::parse_prune_algorithm(std::string(algorithm));
  const core::SemiSparseGradient grad = core::parse_semi_sparse_gradient(std::string(gradient));
  TORCH_CHECK(core::is_transposable(algo), op, ": algorithm '", std::string(algorithm), "' is not transposable (the ",
              activation ? "grad_weight" : "grad_input", " GEMM multiplies by the transpose of the pruned operand, "
              "which must be 2:4 too); use 'largest_abs' or 'largest'");
  TORCH_CHECK(weight.dim() == 2, op, ": weight must be 2-D (out_features, in_features), got ", weight.sym_sizes());
  TORCH_CHECK(input.dim() >= 1, op, ": input must have at least 1 dim");
  TORCH_SYM_CHECK(input.sym_size(-1).sym_eq(weight.sym_size(1)), op, ": input's last dim (", input.sym_size(-1),
                  ") must equal in_features (", weight.sym_size(1), ")");
  for (const at::Tensor* t : {&input, &weight}) {
    TORCH_CHECK(is_semi_sparse_float(t->scalar_type()), op, ": input and weight must be float32, float64, bfloat16 "
                "or float16, got ", t->scalar_type());
  }
  TORCH_CHECK(weight.device() == input.device(), op, ": input and weight must be on one device, got ", input.device(),
              " and ", weight.device());
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1, op, ": bias must be 1-D, got ", bias->sym_sizes());
    TORCH_SYM_CHECK(bias->sym_size(0).sym_eq(weight.sym_size(0)), op, ": bias has ", bias->sym_size(0),
                    " entries, out_features is ", weight.sym_size(0));
  }
  // Whole 4x4 tiles of the pruned operand, on every device (Meta included).
  if (activation) {
    TORCH_SYM_CHECK((weight.sym_size(1) % 4).sym_eq(0), op, ": in_features (", weight.sym_size(1),
                    ") must be a multiple of 4 (4x4 tiles of the input)");
    const c10::SymInt tokens = input.sym_numel() / input.sym_size(-1);
    TORCH_SYM_CHECK((tokens % 4).sym_eq(0), op, ": the input holds ", tokens, " rows of in_features (its leading dims "
                    "multiplied); it must be a multiple of 4 (4x4 tiles of the input)");
  } else {
    for (int d = 0; d < 2; ++d) {
      TORCH_SYM_CHECK((weight.sym_size(d) % 4).sym_eq(0), op, ": weight shape ", weight.sym_sizes(),
                      " must have both dims multiples of 4 (4x4 tiles)");
    }
  }
  if (input.is_cuda()) {
    TORCH_CHECK(input.scalar_type() == at::kHalf || input.scalar_type() == at::kBFloat16, op,
                ": on CUDA the 2:4 GEMMs (cuSPARSELt) run in float16 or bfloat16, and the op computes in the input's "
                "dtype, got ", input.scalar_type(), "; feed bfloat16 activations (the weight may stay float32)");
    const auto n = weight.sym_size(0).maybe_as_int(), k = weight.sym_size(1).maybe_as_int();
    if (n.has_value() && k.has_value()) {
      const auto reason = core::semi_sparse_unsupported_reason(*n, *k, c10::DeviceType::CUDA, activation);
      TORCH_CHECK(!reason.has_value(), op, ": ", reason.value_or(""));
    }
  }
  return {algo, grad};
}

}  // namespace lowbit::ops
