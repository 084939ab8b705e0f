#include <lowbit/nn/linear.h>

#include <ATen/ops/linear.h>
#include <torch/nn/init.h>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <map>
#include <mutex>

namespace lowbit::nn {
namespace {

constexpr const char* kTagKey = "lowbit_method_tag";
constexpr const char* kStateKey = "lowbit_method";

std::map<std::string, LinearMethodLoader>& loaders() {
  static std::map<std::string, LinearMethodLoader> m;
  return m;
}
std::mutex& loaders_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

bool register_linear_method_loader(const std::string& tag, LinearMethodLoader loader) {
  std::lock_guard<std::mutex> lock(loaders_mutex());
  loaders()[tag] = std::move(loader);
  return true;
}

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

void LinearImpl::save(torch::serialize::OutputArchive& archive) const {
  torch::nn::Module::save(archive);
  const std::string tag = method_->serialization_tag();
  if (tag.empty()) return;
  torch::serialize::OutputArchive state;
  method_->save(state);
  archive.write(kTagKey, c10::IValue(tag));
  archive.write(kStateKey, state);
}

void LinearImpl::load(torch::serialize::InputArchive& archive) {
  c10::IValue tag;
  std::shared_ptr<LinearMethod> loaded;
  if (archive.try_read(kTagKey, tag)) {  // rebuild the method first: a bad archive changes nothing here
    LinearMethodLoader loader;
    {
      std::lock_guard<std::mutex> lock(loaders_mutex());
      auto it = loaders().find(tag.toStringRef());
      TORCH_CHECK(it != loaders().end(), "lowbit::nn::Linear: the archive holds a '", tag.toStringRef(),
                  "' method, which this program has no loader for (link the feature that defines it)");
      loader = it->second;
    }
    torch::serialize::InputArchive state;
    archive.read(kStateKey, state);
    loaded = loader(state);
  }
  torch::nn::Module::load(archive);
  if (loaded) {
    set_method(std::move(loaded));
  } else if (!method_->serialization_tag().empty()) {
    set_method(nullptr);  // the archive held a float layer: its weight is now the layer's
  }
}

at::Tensor LinearImpl::forward(const at::Tensor& input) { return method_->forward(*this, input); }

void LinearImpl::set_method(std::shared_ptr<LinearMethod> method) {
  method_ = method ? std::move(method) : std::make_shared<PlainLinearMethod>();
}

}  // namespace lowbit::nn
