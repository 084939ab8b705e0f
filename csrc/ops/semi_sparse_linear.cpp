// lowbit::semi_sparse_linear and lowbit::semi_sparse_activation_linear: schemas, the forwards
// (CompositeExplicitAutograd: also what inference mode and Meta tracing run) and the C++ autograd
// formulas registered at the Autograd key (the math is in core/semi_sparse_linear.h).
//
// Every GEMM with a pruned operand goes through lowbit::semi_sparse_mm, which is the 2:4 GEMM on
// CUDA and the checked dense reference on CPU; the remaining GEMM of each backward is dense.
#include <lowbit/core/semi_sparse_linear.h>

#include <ATen/TensorOperators.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/ops/semi_sparse_checks.h>

namespace lowbit::ops {
namespace {

using core::SemiSparseGradient;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// (..., K) -> (..., N): `like`'s shape with its last dim replaced.
std::vector<c10::SymInt> with_last_dim(const at::Tensor& like, const c10::SymInt& last) {
  std::vector<c10::SymInt> shape(like.sym_sizes().begin(), like.sym_sizes().end());
  shape.back() = last;
  return shape;
}

std::optional<at::Tensor> bias_as(const std::optional<at::Tensor>& bias, at::ScalarType dtype) {
  if (!bias.has_value()) return std::nullopt;
  return bias->to(dtype);
}

// ---- weight-sparse: y = x2 (W⊙M)^T + b --------------------------------------------------------

struct WeightSparseForward {
  at::Tensor out, x2, w_pruned, mask;
};

WeightSparseForward weight_sparse_forward(const at::Tensor& input, const at::Tensor& weight,
                                          const std::optional<at::Tensor>& bias, c10::string_view algorithm) {
  const at::ScalarType dtype = input.scalar_type();
  const at::Tensor x2 = input.reshape_symint({-1, input.sym_size(-1)});
  // Prune the master weight in its own precision, then compute in the input's dtype.
  auto [w_pruned, mask] = core::prune_2_4(weight, std::string(algorithm));
  w_pruned = w_pruned.to(dtype);
  // (W⊙M) (N, K) @ x2^T (K, M), transposed: y as a contiguous (M, N).
  const at::Tensor out = core::semi_sparse_mm(w_pruned, x2.t(), bias_as(bias, dtype), /*transpose_result=*/true);
  return {out.reshape_symint(with_last_dim(input, weight.sym_size(0))), x2, w_pruned, mask};
}

at::Tensor semi_sparse_linear_forward(const at::Tensor& input, const at::Tensor& weight,
                                      const std::optional<at::Tensor>& bias, c10::string_view algorithm,
                                      c10::string_view gradient) {
  check_semi_sparse_linear_args("semi_sparse_linear", input, weight, bias, algorithm, gradient, false);
  return weight_sparse_forward(input, weight, bias, algorithm).out;
}

class SemiSparseLinearFunction : public torch::autograd::Function<SemiSparseLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, c10::string_view algorithm,
                            c10::string_view gradient) {
    const auto [algo, grad] =
        check_semi_sparse_linear_args("semi_sparse_linear", input, weight, bias, algorithm, gradient, false);
    WeightSparseForward f = weight_sparse_forward(input, weight, bias, algorithm);
    ctx->saved_data["masked"] = grad == SemiSparseGradient::Masked;
    ctx->saved_data["weight_dtype"] = weight.scalar_type();
    ctx->saved_data["bias_dtype"] = bias.has_value() ? c10::IValue(bias->scalar_type()) : c10::IValue();
    ctx->save_for_backward({f.x2, f.w_pruned, grad == SemiSparseGradient::Masked ? f.mask : at::Tensor()});
    return f.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x2 = saved[0];
    const at::Tensor& w_pruned = saved[1];
    const at::Tensor& grad_out = grads[0];
    const at::Tensor g2 = grad_out.reshape_symint({-1, grad_out.sym_size(-1)});
    at::Tensor grad_input, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) {
      // (W⊙M)^T (K, N) @ g2^T (N, M), transposed: gx as a contiguous (M, K).
      grad_input = core::semi_sparse_mm(w_pruned.t(), g2.t(), std::nullopt, /*transpose_result=*/true);
      grad_input = grad_input.reshape_symint(with_last_dim(grad_out, x2.sym_size(1)));
    }
    if (ctx->needs_input_grad(1)) {
      grad_weight = at::mm(g2.t(), x2);
      if (ctx->saved_data["masked"].toBool()) grad_weight = grad_weight * saved[2];
      grad_weight = grad_weight.to(ctx->saved_data["weight_dtype"].toScalarType());
    }
    const c10::IValue bias_dtype = ctx->saved_data["bias_dtype"];
    if (!bias_dtype.isNone() && ctx->needs_input_grad(2)) grad_bias = g2.sum(0).to(bias_dtype.toScalarType());
    return {grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor()};
  }
};

at::Tensor semi_sparse_linear_autograd(const at::Tensor& input, const at::Tensor& weight,
                                       const std::optional<at::Tensor>& bias, c10::string_view algorithm,
                                       c10::string_view gradient) {
  return SemiSparseLinearFunction::apply(input, weight, bias, algorithm, gradient);
}

// ---- activation-sparse: y = (x2⊙M) W^T + b -----------------------------------------------------

struct ActivationSparseForward {
  at::Tensor out, x_pruned, mask, w;
};

ActivationSparseForward activation_sparse_forward(const at::Tensor& input, const at::Tensor& weight,
                                                  const std::optional<at::Tensor>& bias, c10::string_view algorithm) {
  const at::ScalarType dtype = input.scalar_type();
  const at::Tensor x2 = input.reshape_symint({-1, input.sym_size(-1)});
  auto [x_pruned, mask] = core::prune_2_4(x2, std::string(algorithm));
  const at::Tensor w = weight.to(dtype);
  // (x2⊙M) (M, K) @ W^T (K, N): y (M, N); the bias runs along the dense operand's columns.
  at::Tensor out = core::semi_sparse_mm(x_pruned, w.t());
  if (bias.has_value()) out = out + bias->to(dtype);
  return {out.reshape_symint(with_last_dim(input, weight.sym_size(0))), x_pruned, mask, w};
}

at::Tensor semi_sparse_activation_linear_forward(const at::Tensor& input, const at::Tensor& weight,
                                                 const std::optional<at::Tensor>& bias, c10::string_view algorithm,
                                                 c10::string_view gradient) {
  check_semi_sparse_linear_args("semi_sparse_activation_linear", input, weight, bias, algorithm, gradient, true);
  return activation_sparse_forward(input, weight, bias, algorithm).out;
}

class SemiSparseActivationLinearFunction : public torch::autograd::Function<SemiSparseActivationLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, c10::string_view algorithm,
                            c10::string_view gradient) {
    const auto [algo, grad] = check_semi_sparse_linear_args("semi_sparse_activation_linear", input, weight, bias,
                                                            algorithm, gradient, true);
    ActivationSparseForward f = activation_sparse_forward(input, weight, bias, algorithm);
    ctx->saved_data["masked"] = grad == SemiSparseGradient::Masked;
    ctx->saved_data["weight_dtype"] = weight.scalar_type();
    ctx->saved_data["bias_dtype"] = bias.has_value() ? c10::IValue(bias->scalar_type()) : c10::IValue();
    ctx->save_for_backward({f.x_pruned, f.w, grad == SemiSparseGradient::Masked ? f.mask : at::Tensor()});
    return f.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x_pruned = saved[0];
    const at::Tensor& w = saved[1];
    const at::Tensor& grad_out = grads[0];
    const at::Tensor g2 = grad_out.reshape_symint({-1, grad_out.sym_size(-1)});
    at::Tensor grad_input, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) {
      grad_input = at::mm(g2, w);
      if (ctx->saved_data["masked"].toBool()) grad_input = grad_input * saved[2];
      grad_input = grad_input.reshape_symint(with_last_dim(grad_out, w.sym_size(1)));
    }
    if (ctx->needs_input_grad(1)) {
      // (x2⊙M)^T (K, M) @ g2 (M, N), transposed: gW as a contiguous (N, K).
      grad_weight = core::semi_sparse_mm(x_pruned.t(), g2, std::nullopt, /*transpose_result=*/true);
      grad_weight = grad_weight.to(ctx->saved_data["weight_dtype"].toScalarType());
    }
    const c10::IValue bias_dtype = ctx->saved_data["bias_dtype"];
    if (!bias_dtype.isNone() && ctx->needs_input_grad(2)) grad_bias = g2.sum(0).to(bias_dtype.toScalarType());
    return {grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor()};
  }
};

at::Tensor semi_sparse_activation_linear_autograd(const at::Tensor& input, const at::Tensor& weight,
                                                  const std::optional<at::Tensor>& bias, c10::string_view algorithm,
                                                  c10::string_view gradient) {
  return SemiSparseActivationLinearFunction::apply(input, weight, bias, algorithm, gradient);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("semi_sparse_linear(Tensor input, Tensor weight, Tensor? bias=None, str algorithm=\"largest_abs\", "
        "str gradient=\"ste\") -> Tensor");
  m.def("semi_sparse_activation_linear(Tensor input, Tensor weight, Tensor? bias=None, "
        "str algorithm=\"largest_abs\", str gradient=\"ste\") -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("semi_sparse_linear", &semi_sparse_linear_forward);
  m.impl("semi_sparse_activation_linear", &semi_sparse_activation_linear_forward);
}

TORCH_LIBRARY_IMPL(lowbit, Autograd, m) {
  m.impl("semi_sparse_linear", &semi_sparse_linear_autograd);
  m.impl("semi_sparse_activation_linear", &semi_sparse_activation_linear_autograd);
}

}  // namespace lowbit::ops
