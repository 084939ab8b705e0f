// lowbit::float8_linear: schema, the forward (CompositeExplicitAutograd: also what inference
// mode and Meta tracing run) and the C++ autograd formula registered at the Autograd key.
//
// Shapes: x2 = input as (M, K), W (N, K), g2 = grad_output as (M, N).
//   out         = x2 @ W^T   reduction over K: x scaled per row of x2, W per row of W
//   grad_input  = g2 @ W     reduction over N: g per row of g2, W per column of W
//   grad_weight = g2^T @ x2  reduction over M: g per column of g2, x per column of x2
// Tensorwise scales serve every reduction dim, so its fp8 copies of x and W are reused in
// backward; row-wise scales differ per GEMM, so rowwise keeps x and W in high precision and casts
// each operand for its GEMM (as torchao does).
//
// lowbit::float8_linear_precast is the tensorwise formula for a weight that arrives already in fp8
// with its scale (FSDP's float8 all-gather casts each shard with the whole weight's scale): the
// forward and grad_input GEMMs use those bytes as they are, no second cast; the gradient goes to
// the high-precision `weight` argument, whose values are never read.
#include <lowbit/core/float8_linear.h>

#include <ATen/ops/matmul.h>
#include <ATen/ops/sum.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <lowbit/core/float8_cast.h>
#include <lowbit/core/scaled_mm.h>

namespace lowbit::ops {
namespace {

using core::Float8Recipe;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_float8_linear_args(const at::Tensor& input, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(weight.dim() == 2, "float8_linear: weight must be 2-D (out_features, in_features), got ",
              weight.sym_sizes());
  TORCH_CHECK(input.dim() >= 1, "float8_linear: input must have at least 1 dim");
  TORCH_SYM_CHECK(input.sym_size(-1).sym_eq(weight.sym_size(1)), "float8_linear: input's last dim (",
                  input.sym_size(-1), ") must equal in_features (", weight.sym_size(1), ")");
  for (const at::Tensor* t : {&input, &weight}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat || t->scalar_type() == at::kBFloat16 || t->scalar_type() == at::kHalf,
                "float8_linear: input and weight must be float32, bfloat16 or float16, got ", t->scalar_type());
  }
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1, "float8_linear: bias must be 1-D, got ", bias->sym_sizes());
    TORCH_SYM_CHECK(bias->sym_size(0).sym_eq(weight.sym_size(0)), "float8_linear: bias has ", bias->sym_size(0),
                    " entries, out_features is ", weight.sym_size(0));
  }
}

struct Fp8 {
  at::Tensor data, scale;
};

Fp8 cast(const at::Tensor& x, at::ScalarType dtype, const char* granularity, bool pow2) {
  auto [data, scale] = core::cast_to_float8(x, dtype, granularity, pow2);
  return {data, scale};
}

at::ScalarType grad_dtype(Float8Recipe r) {
  return r == Float8Recipe::Tensorwise ? at::kFloat8_e5m2 : at::kFloat8_e4m3fn;
}

// out = x2 @ W^T (+ bias) in the input's dtype. Hands back the fp8 operands for backward to reuse.
at::Tensor forward_gemm(const at::Tensor& x2, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                        Float8Recipe recipe, bool emulate, bool pow2, Fp8* x_fp8, Fp8* w_fp8) {
  const char* granularity = recipe == Float8Recipe::Tensorwise ? "tensor" : "row";
  *x_fp8 = cast(x2, at::kFloat8_e4m3fn, granularity, pow2);     // () or (M, 1)
  *w_fp8 = cast(weight, at::kFloat8_e4m3fn, granularity, pow2);  // () or (N, 1)
  const at::Tensor w_scale = recipe == Float8Recipe::Tensorwise ? w_fp8->scale : w_fp8->scale.t();
  return core::scaled_mm(x_fp8->data, w_fp8->data.t(), x_fp8->scale, w_scale, bias, x2.scalar_type(),
                         /*use_fast_accum=*/true, emulate);
}

// The tensorwise backward GEMMs from the saved fp8 x and W: (grad_input, grad_weight).
std::pair<at::Tensor, at::Tensor> tensorwise_backward_gemms(const at::Tensor& g2, const Fp8& x, const Fp8& w,
                                                            bool emulate, bool pow2) {
  const at::ScalarType dtype = g2.scalar_type();
  const Fp8 g = cast(g2, grad_dtype(Float8Recipe::Tensorwise), "tensor", pow2);
  at::Tensor grad_input = core::scaled_mm(g.data, w.data, g.scale, w.scale, std::nullopt, dtype, false, emulate);
  at::Tensor grad_weight = core::scaled_mm(g.data.t(), x.data, g.scale, x.scale, std::nullopt, dtype, false, emulate);
  return {grad_input, grad_weight};
}

at::Tensor grad_bias_of(const at::Tensor& g2, const c10::IValue& bias_dtype) {
  return bias_dtype.isNone() ? at::Tensor() : g2.sum(0).to(bias_dtype.toScalarType());
}

// (..., K) -> (..., N) and back: `like`'s shape with its last dim replaced.
std::vector<c10::SymInt> with_last_dim(const at::Tensor& like, const c10::SymInt& last) {
  std::vector<c10::SymInt> shape(like.sym_sizes().begin(), like.sym_sizes().end());
  shape.back() = last;
  return shape;
}

at::Tensor float8_linear_forward(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, c10::string_view recipe, bool emulate,
                                 bool round_scales_to_power_of_2, bool recompute_weight_in_bwd) {
  check_float8_linear_args(input, weight, bias);
  const Float8Recipe r = core::parse_float8_recipe(std::string(recipe));
  const at::Tensor x2 = input.reshape_symint({-1, input.sym_size(-1)});
  Fp8 x_fp8, w_fp8;
  const at::Tensor out = forward_gemm(x2, weight, bias, r, emulate, round_scales_to_power_of_2, &x_fp8, &w_fp8);
  return out.reshape_symint(with_last_dim(input, weight.sym_size(0)));
}

class Float8LinearFunction : public torch::autograd::Function<Float8LinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, c10::string_view recipe, bool emulate,
                            bool pow2, bool recompute_weight) {
    check_float8_linear_args(input, weight, bias);
    const Float8Recipe r = core::parse_float8_recipe(std::string(recipe));
    const at::Tensor x2 = input.reshape_symint({-1, input.sym_size(-1)});
    Fp8 x_fp8, w_fp8;  // the weight is cast from its own (master) dtype
    const at::Tensor out = forward_gemm(x2, weight, bias, r, emulate, pow2, &x_fp8, &w_fp8);

    ctx->saved_data["recipe"] = static_cast<int64_t>(r);
    ctx->saved_data["emulate"] = emulate;
    ctx->saved_data["pow2"] = pow2;
    ctx->saved_data["bias_dtype"] = bias.has_value() ? c10::IValue(bias->scalar_type()) : c10::IValue();
    ctx->saved_data["weight_dtype"] = weight.scalar_type();
    if (r == Float8Recipe::Tensorwise) {
      // x in fp8 (1 byte per element) serves grad_weight; W in fp8 unless recomputed.
      if (recompute_weight) {
        ctx->save_for_backward({x_fp8.data, x_fp8.scale, weight, at::Tensor(), at::Tensor()});
      } else {
        ctx->save_for_backward({x_fp8.data, x_fp8.scale, at::Tensor(), w_fp8.data, w_fp8.scale});
      }
    } else {
      ctx->save_for_backward({x2, at::Tensor(), weight, at::Tensor(), at::Tensor()});
    }
    return out.reshape_symint(with_last_dim(input, weight.sym_size(0)));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto r = static_cast<Float8Recipe>(ctx->saved_data["recipe"].toInt());
    const bool emulate = ctx->saved_data["emulate"].toBool();
    const bool pow2 = ctx->saved_data["pow2"].toBool();
    const auto weight_dtype = ctx->saved_data["weight_dtype"].toScalarType();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad_out = grads[0];
    const at::Tensor g2 = grad_out.reshape_symint({-1, grad_out.sym_size(-1)});
    const at::ScalarType dtype = g2.scalar_type();

    at::Tensor grad_input, grad_weight;
    if (r == Float8Recipe::Tensorwise) {
      const Fp8 x{saved[0], saved[1]};
      const Fp8 w = saved[2].defined() ? cast(saved[2], at::kFloat8_e4m3fn, "tensor", pow2) : Fp8{saved[3], saved[4]};
      std::tie(grad_input, grad_weight) = tensorwise_backward_gemms(g2, x, w, emulate, pow2);
    } else {
      const at::Tensor& x2 = saved[0];
      const at::Tensor& w = saved[2];
      const Fp8 g_rows = cast(g2, at::kFloat8_e4m3fn, "row", pow2);       // (M, 1): reduce over N
      const Fp8 w_cols = cast(w, at::kFloat8_e4m3fn, "column", pow2);     // (1, K)
      grad_input = core::scaled_mm(g_rows.data, w_cols.data, g_rows.scale, w_cols.scale, std::nullopt, dtype, false,
                                   emulate);
      if (r == Float8Recipe::RowwiseWithGwHp) {
        grad_weight = at::matmul(g2.t(), x2);
      } else {
        const Fp8 g_cols = cast(g2, at::kFloat8_e4m3fn, "column", pow2);  // (1, N): reduce over M
        const Fp8 x_cols = cast(x2, at::kFloat8_e4m3fn, "column", pow2);  // (1, K)
        grad_weight = core::scaled_mm(g_cols.data.t(), x_cols.data, g_cols.scale.t(), x_cols.scale, std::nullopt,
                                      dtype, false, emulate);
      }
    }
    const at::Tensor grad_bias = grad_bias_of(g2, ctx->saved_data["bias_dtype"]);
    return {grad_input.reshape_symint(with_last_dim(grad_out, grad_input.sym_size(1))), grad_weight.to(weight_dtype),
            grad_bias,
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor float8_linear_autograd(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, c10::string_view recipe, bool emulate,
                                  bool round_scales_to_power_of_2, bool recompute_weight_in_bwd) {
  return Float8LinearFunction::apply(input, weight, bias, recipe, emulate, round_scales_to_power_of_2,
                                     recompute_weight_in_bwd);
}

// ---- float8_linear_precast: the tensorwise formula with the weight already in fp8 ----------

void check_precast_args(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& weight_fp8,
                        const at::Tensor& weight_scale, const std::optional<at::Tensor>& bias) {
  check_float8_linear_args(input, weight, bias);
  TORCH_CHECK(weight_fp8.scalar_type() == at::kFloat8_e4m3fn,
              "float8_linear_precast: weight_fp8 must be float8_e4m3fn (the tensorwise recipe's weight dtype), got ",
              weight_fp8.scalar_type());
  TORCH_CHECK(weight_fp8.dim() == 2, "float8_linear_precast: weight_fp8 must be 2-D, got ", weight_fp8.sym_sizes());
  TORCH_SYM_CHECK(weight_fp8.sym_size(0).sym_eq(weight.sym_size(0)).sym_and(
                      weight_fp8.sym_size(1).sym_eq(weight.sym_size(1))),
                  "float8_linear_precast: weight_fp8 has shape ", weight_fp8.sym_sizes(), ", weight has ",
                  weight.sym_sizes());
  TORCH_CHECK(weight_scale.scalar_type() == at::kFloat, "float8_linear_precast: weight_scale must be float32, got ",
              weight_scale.scalar_type());
  TORCH_SYM_CHECK(weight_scale.sym_numel().sym_eq(1),
                  "float8_linear_precast: weight_scale must hold one value (tensorwise), got shape ",
                  weight_scale.sym_sizes());
}

at::Tensor precast_forward_gemm(const at::Tensor& x2, const Fp8& w, const std::optional<at::Tensor>& bias,
                                bool emulate, bool pow2, Fp8* x_fp8) {
  *x_fp8 = cast(x2, at::kFloat8_e4m3fn, "tensor", pow2);
  return core::scaled_mm(x_fp8->data, w.data.t(), x_fp8->scale, w.scale, bias, x2.scalar_type(),
                         /*use_fast_accum=*/true, emulate);
}

at::Tensor float8_linear_precast_forward(const at::Tensor& input, const at::Tensor& weight,
                                         const at::Tensor& weight_fp8, const at::Tensor& weight_scale,
                                         const std::optional<at::Tensor>& bias, bool emulate,
                                         bool round_scales_to_power_of_2) {
  check_precast_args(input, weight, weight_fp8, weight_scale, bias);
  const at::Tensor x2 = input.reshape_symint({-1, input.sym_size(-1)});
  Fp8 x_fp8;
  const at::Tensor out = precast_forward_gemm(x2, {weight_fp8, weight_scale.reshape({})}, bias, emulate,
                                              round_scales_to_power_of_2, &x_fp8);
  return out.reshape_symint(with_last_dim(input, weight.sym_size(0)));
}

class Float8LinearPrecastFunction : public torch::autograd::Function<Float8LinearPrecastFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& weight_fp8, const at::Tensor& weight_scale,
                            const std::optional<at::Tensor>& bias, bool emulate, bool pow2) {
    check_precast_args(input, weight, weight_fp8, weight_scale, bias);
    const at::Tensor x2 = input.reshape_symint({-1, input.sym_size(-1)});
    const Fp8 w{weight_fp8, weight_scale.reshape({})};
    Fp8 x_fp8;
    const at::Tensor out = precast_forward_gemm(x2, w, bias, emulate, pow2, &x_fp8);
    ctx->saved_data["emulate"] = emulate;
    ctx->saved_data["pow2"] = pow2;
    ctx->saved_data["bias_dtype"] = bias.has_value() ? c10::IValue(bias->scalar_type()) : c10::IValue();
    ctx->saved_data["weight_dtype"] = weight.scalar_type();
    // The gathered fp8 weight serves grad_input as it is; `weight` itself is not saved.
    ctx->save_for_backward({x_fp8.data, x_fp8.scale, w.data, w.scale});
    return out.reshape_symint(with_last_dim(input, weight.sym_size(0)));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad_out = grads[0];
    const at::Tensor g2 = grad_out.reshape_symint({-1, grad_out.sym_size(-1)});
    auto [grad_input, grad_weight] = tensorwise_backward_gemms(g2, {saved[0], saved[1]}, {saved[2], saved[3]},
                                                               ctx->saved_data["emulate"].toBool(),
                                                               ctx->saved_data["pow2"].toBool());
    const at::Tensor grad_bias = grad_bias_of(g2, ctx->saved_data["bias_dtype"]);
    return {grad_input.reshape_symint(with_last_dim(grad_out, grad_input.sym_size(1))),
            grad_weight.to(ctx->saved_data["weight_dtype"].toScalarType()),
            at::Tensor(), at::Tensor(), grad_bias, at::Tensor(), at::Tensor()};
  }
};

at::Tensor float8_linear_precast_autograd(const at::Tensor& input, const at::Tensor& weight,
                                          const at::Tensor& weight_fp8, const at::Tensor& weight_scale,
                                          const std::optional<at::Tensor>& bias, bool emulate,
                                          bool round_scales_to_power_of_2) {
  return Float8LinearPrecastFunction::apply(input, weight, weight_fp8, weight_scale, bias, emulate,
                                            round_scales_to_power_of_2);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("float8_linear(Tensor input, Tensor weight, Tensor? bias=None, str recipe=\"tensorwise\", "
        "bool emulate=False, bool round_scales_to_power_of_2=False, bool recompute_weight_in_bwd=False) -> Tensor");
  m.def("float8_linear_precast(Tensor input, Tensor weight, Tensor weight_fp8, Tensor weight_scale, "
        "Tensor? bias=None, bool emulate=False, bool round_scales_to_power_of_2=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("float8_linear", &float8_linear_forward);
  m.impl("float8_linear_precast", &float8_linear_precast_forward);
}
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) {
  m.impl("float8_linear", &float8_linear_autograd);
  m.impl("float8_linear_precast", &float8_linear_precast_autograd);
}

}  // namespace lowbit::ops
