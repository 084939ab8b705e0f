#include <lowbit/ops/quantized_linear_autograd.h>

#include <ATen/ops/matmul.h>
#include <ATen/ops/sum.h>

#include <lowbit/quant/format.h>

namespace lowbit::ops {

void check_frozen_parts(const char* op, at::TensorList parts) {
  for (const at::Tensor& p : parts) {
    TORCH_CHECK(!p.requires_grad(), op, ": a packed weight part requires grad, but quantized weights are frozen (no "
                "gradient reaches them); train the float weight with QAT (lowbit.qat.prepare) or an adapter instead");
  }
}

at::Tensor QuantizedLinearFunction::forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                                            const std::optional<at::Tensor>& bias, const FrozenQuantizedWeight& weight,
                                            const std::function<at::Tensor()>& run_below_autograd) {
  at::Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    out = run_below_autograd();
  }
  ctx->saved_data["config"] = weight.config;
  ctx->saved_data["parts"] = weight.parts;
  ctx->saved_data["out_features"] = weight.out_features;
  ctx->saved_data["in_features"] = input.size(-1);
  ctx->saved_data["input_dtype"] = input.scalar_type();
  ctx->saved_data["input_needs_grad"] = input.requires_grad();
  ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
  ctx->saved_data["bias_dtype"] = bias.has_value() && bias->defined() ? bias->scalar_type() : at::kFloat;
  return out;
}

torch::autograd::variable_list QuantizedLinearFunction::backward(torch::autograd::AutogradContext* ctx,
                                                                 torch::autograd::variable_list grads) {
  const at::Tensor& g = grads[0];  // (..., N)
  const int64_t n = ctx->saved_data["out_features"].toInt();
  at::Tensor grad_input, grad_bias;
  if (ctx->saved_data["input_needs_grad"].toBool()) {
    const quant::QuantizeConfig config = quant::parse_quantize_config(ctx->saved_data["config"].toStringRef());
    const std::vector<at::Tensor> parts = ctx->saved_data["parts"].toTensorVector();
    const at::ScalarType dtype = ctx->saved_data["input_dtype"].toScalarType();
    const int64_t k = ctx->saved_data["in_features"].toInt();
    const at::Tensor w = config.format().dequantize(parts, n, k, g.scalar_type());  // (N, K)
    grad_input = at::matmul(g, w).to(dtype);
  }
  if (ctx->saved_data["has_bias"].toBool()) {
    grad_bias = g.reshape({-1, n}).sum(0).to(ctx->saved_data["bias_dtype"].toScalarType());
  }
  return {grad_input, grad_bias, at::Tensor(), at::Tensor()};
}

}  // namespace lowbit::ops
