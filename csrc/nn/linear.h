// lowbit::nn::Linear — a drop-in for torch::nn::Linear whose linear method is swappable.
//
// Constructed like torch::nn::Linear (same options, same parameter names `weight` / `bias`,
// same initialization, same output). The features change how it computes, not what it holds:
// float8 training, fake quantization, 2:4 sparsity and quantized inference each install a
// LinearMethod, and convert functions walk a module tree swapping methods.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <string>

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace lowbit::nn {

class LinearImpl;

// How a Linear computes y = f(x, weight, bias). Implementations may keep state of their own
// (packed weights, scales) and must leave the layer's parameters' names and shapes alone.
class LinearMethod {
 public:
  virtual ~LinearMethod() = default;
  // A short name for summaries and printing, e.g. "plain", "float8_tensorwise", "int4wo".
  virtual std::string name() const = 0;
  virtual at::Tensor forward(LinearImpl& layer, const at::Tensor& input) = 0;
  // torch::save / torch::load of the layer. A method holding state the layer's parameters do not
  // (a packed weight) returns the tag of a loader registered with register_linear_method_loader
  // and writes that state; methods that are configuration only (float8, fake quant) return "" and
  // are not saved (the loading model keeps its own).
  virtual std::string serialization_tag() const { return ""; }
  virtual void save(torch::serialize::OutputArchive& archive) const {}
};

// Rebuilds a method from what its save() wrote.
using LinearMethodLoader = std::function<std::shared_ptr<LinearMethod>(torch::serialize::InputArchive& archive)>;
// Registers `loader` under `tag` (called once, at load time, by the feature that owns the method).
bool register_linear_method_loader(const std::string& tag, LinearMethodLoader loader);

// The default method: at::linear(input, weight, bias), exactly torch::nn::Linear's forward.
class PlainLinearMethod : public LinearMethod {
 public:
  std::string name() const override { return "plain"; }
  at::Tensor forward(LinearImpl& layer, const at::Tensor& input) override;
};

class LinearImpl : public torch::nn::Cloneable<LinearImpl> {
 public:
  LinearImpl(int64_t in_features, int64_t out_features)
      : LinearImpl(torch::nn::LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const torch::nn::LinearOptions& options_);

  // (Re)creates weight and bias with torch::nn::Linear's initialization.
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  // torch::save / torch::load: the parameters, plus the method's own state when it holds some (a
  // quantized layer round-trips as a quantized layer). Loading a float layer into a layer whose
  // method held a packed weight restores the plain method.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // y = method(x); with the plain method, x @ weight^T + bias.
  at::Tensor forward(const at::Tensor& input);

  // Installs a method (nullptr restores the plain one).
  void set_method(std::shared_ptr<LinearMethod> method);
  LinearMethod& method() const { return *method_; }
  std::shared_ptr<LinearMethod> method_ptr() const { return method_; }

  torch::nn::LinearOptions options;
  at::Tensor weight;  // (out_features, in_features)
  at::Tensor bias;    // (out_features), undefined when options.bias() is false

 private:
  std::shared_ptr<LinearMethod> method_ = std::make_shared<PlainLinearMethod>();
};

TORCH_MODULE(Linear);

}  // namespace lowbit::nn
