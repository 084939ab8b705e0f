// 2:4 semi-sparse training ops: the 2:4 GEMM and the two differentiable linears built on it,
// lowbit::semi_sparse_linear (weight pruned every call) and lowbit::semi_sparse_activation_linear
// (input pruned every call). One C++ autograd formula each serves both faces.
//
// Math (x2 = input as (M, K), W (N, K), gy = grad_output as (M, N); M ⊙ = the 2:4 mask):
//   semi_sparse_linear             y  = x2 (W⊙M)^T + b         2:4 GEMM, W⊙M the 2:4 operand
//                                  gx = gy (W⊙M)               2:4 GEMM, (W⊙M)^T the 2:4 operand
//                                  gW = gy^T x2                dense; masked: (gy^T x2) ⊙ M
//   semi_sparse_activation_linear  y  = (x2⊙M) W^T + b         2:4 GEMM, x2⊙M the 2:4 operand
//                                  gW = gy^T (x2⊙M)            2:4 GEMM, (x2⊙M)^T the 2:4 operand
//                                  gx = gy W                   dense; masked: (gy W) ⊙ M
// Both 2:4 operands and their transposes must be 2:4, so the training ops take the tile algorithms
// ("largest_abs", "largest") only. CPU: the exact reference (dense GEMMs with the pruned operand).
// CUDA: cuSPARSELt (compress + sparse GEMM), float16 / bfloat16, shapes as semi_sparse_unsupported_reason says.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>

#include <optional>
#include <string>

namespace lowbit::core {

// What reaches the dense master tensor (the weight for semi_sparse_linear, the input for
// semi_sparse_activation_linear) through the pruning:
//   Ste     straight-through: the gradient of the pruned tensor, unmasked (torchao's choice; pruned
//           weights keep learning and can come back).
//   Masked  the gradient masked with the 2:4 pattern (the exact derivative of the pruned forward;
//           xformers' "24sparse").
enum class SemiSparseGradient { Ste, Masked };

// "ste" | "masked" -> gradient; anything else is an error listing them.
SemiSparseGradient parse_semi_sparse_gradient(const std::string& name);
std::string semi_sparse_gradient_name(SemiSparseGradient gradient);

// On CUDA every dim of the cuSPARSELt operands must be a multiple of this. cuSPARSELt documents
// 16 for 16-bit types; lowbit asks 128 (what the research notes found torch's path needs) until a
// GPU run shows smaller multiples work. semi_sparse_mm pads to it with zeros (exact); the training
// ops refuse feature dims that would need padding (a padded weight copy every step).
constexpr int64_t kCudaSemiSparseMultiple = 128;

// Why a linear layer of (out_features, in_features) cannot train with 2:4 sparsity on `device`
// (weight-sparse, or activation-sparse when `activation`), or nullopt when it can. CPU: the pruned
// dims must be multiples of 4 (whole 4x4 tiles). CUDA: both features multiples of 128. This is the
// one shape rule of the training ops, the convert functions and the Python face.
std::optional<std::string> semi_sparse_unsupported_reason(int64_t out_features, int64_t in_features,
                                                          c10::DeviceType device, bool activation = false);

// sparse (m, k) @ dense (k, n) + bias[:, None]; every aligned group of 4 along sparse's rows holds at
// most 2 nonzeros (prune_2_4's values, or their transpose for a tile algorithm). Returns (m, n), or
// with transpose_result its transpose as a contiguous (n, m). CPU: the exact reference, which
// checks the 2:4 pattern; CUDA: cuSPARSELt (float16 / bfloat16), each dim zero-padded to a multiple
// of kCudaSemiSparseMultiple where it is not one.
at::Tensor semi_sparse_mm(const at::Tensor& sparse, const at::Tensor& dense,
                          const std::optional<at::Tensor>& bias = std::nullopt, bool transpose_result = false);

// input (..., K), weight (N, K), bias (N,) -> (..., N) in input's dtype (weight and bias are cast to
// it after pruning); gradients in the dtypes of input, weight and bias. algorithm: "largest_abs" |
// "largest"; gradient: "ste" | "masked" (for the weight).
at::Tensor semi_sparse_linear(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                              const std::string& algorithm = "largest_abs", const std::string& gradient = "ste");

// The same with the input pruned instead (per 4x4 tile of the (tokens, K) input, so the number of
// tokens must be a multiple of 4); gradient applies to the input.
at::Tensor semi_sparse_activation_linear(const at::Tensor& input, const at::Tensor& weight,
                                         const std::optional<at::Tensor>& bias,
                                         const std::string& algorithm = "largest_abs",
                                         const std::string& gradient = "ste");

}  // namespace lowbit::core
