#include <lowbit/nn/linear.h>

#include <ATen/ops/linear.h>
#include <torch/nn/init.h>

#include <cmath>

namespace lowbit::nn {

at::Tensor PlainLinearMethod::forward(LinearImpl& layer, const at::Tensor& input) {
  return at::linear(input, layer.weight, layer.bias);
}

LinearImpl::LinearImpl(const torch::nn::LinearOptions& options_) : options(options_) { reset(); }

void LinearImpl::reset() {
  weight = register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  if (options.bias()) {
    bias = register_parameter("bias", torch::empty(options.out_features()));
  } else {
    bias = register_parameter("bias", {}, /*requires_grad=*/false);
  }
  reset_parameters();
}

// Mirrors torch::nn::LinearImpl::reset_parameters so equal seeds give equal weights.
void LinearImpl::reset_parameters() {
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5));
  if (bias.defined()) {
    const auto fan = torch::nn::init::_calculate_fan_in_and_fan_out(weight);
    const double bound = 1.0 / std::sqrt(static_cast<double>(std::get<0>(fan)));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

void LinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lowbit::nn::Linear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features() << ", bias=" << (options.bias() ? "true" : "false")
         << ", method=" << method_->name() << ")";
}

at::Tensor LinearImpl::forward(const at::Tensor& input) { return method_->forward(*this, input); }

void LinearImpl::set_method(std::shared_ptr<LinearMethod> method) {
  method_ = method ? std::move(method) : std::make_shared<PlainLinearMethod>();
}

}  // namespace lowbit::nn
