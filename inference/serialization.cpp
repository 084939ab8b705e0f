#include <lowbit/inference/serialization.h>

#include <c10/core/GradMode.h>

#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include <lowbit/inference/quantized_linear_method.h>

namespace lowbit::inference {
namespace {

// Every module with its qualified name, the root included (it may live on the stack).
std::vector<std::pair<std::string, torch::nn::Module*>> all_modules(torch::nn::Module& root) {
  std::vector<std::pair<std::string, torch::nn::Module*>> out{{"", &root}};
  for (const auto& item : root.named_modules("", /*include_self=*/false)) out.emplace_back(item.key(), item.value().get());
  return out;
}

std::string join(const std::string& prefix, const std::string& name) { return prefix.empty() ? name : prefix + "." + name; }

}  // namespace

void save_quantized(torch::nn::Module& model, const std::string& path) {
  QuantizedFile file;
  for (const auto& [name, module] : all_modules(model)) {
    auto* layer = dynamic_cast<nn::LinearImpl*>(module);
    auto* method = layer ? dynamic_cast<const QuantizedLinearMethod*>(&layer->method()) : nullptr;
    if (method) file.weights.emplace(join(name, "weight"), method->weight());
  }
  for (const auto& item : model.named_parameters()) {
    if (!file.weights.count(item.key())) file.tensors[item.key()] = item.value().detach();
  }
  for (const auto& item : model.named_buffers()) file.tensors[item.key()] = item.value().detach();
  write_quantized_file(path, file);
}

void load_quantized(torch::nn::Module& model, const std::string& path) {
  const std::string where = "load_quantized: " + path;
  QuantizedFile file;
  try {
    file = read_quantized_file(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, e.what_without_backtrace(), "; the model was not changed");
  }
  const auto& weights = file.weights;

  // Match everything against the model before changing anything.
  std::vector<std::pair<nn::LinearImpl*, const QuantizedWeight*>> installs;
  for (const auto& [name, module] : all_modules(model)) {
    auto it = weights.find(join(name, "weight"));
    if (it == weights.end()) continue;
    auto* layer = dynamic_cast<nn::LinearImpl*>(module);
    TORCH_CHECK(layer, where, ": '", it->first, "' is quantized in the file but module '", name,
                "' is not a lowbit::nn::Linear; the model was not changed");
    TORCH_CHECK(layer->options.out_features() == it->second.out_features &&
                    layer->options.in_features() == it->second.in_features,
                where, ": '", it->first, "' is (", it->second.out_features, ", ", it->second.in_features,
                ") in the file, the model's layer is (", layer->options.out_features(), ", ",
                layer->options.in_features(), "); the model was not changed");
    installs.emplace_back(layer, &it->second);
  }
  TORCH_CHECK(installs.size() == weights.size(), where, ": the file has quantized weights the model does not have; "
              "the model was not changed");
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (model tensor, file tensor)
  std::set<std::string> covered;
  auto match = [&](const std::string& name, at::Tensor& target) {
    if (weights.count(name)) return;  // the quantized weight replaces it
    auto it = file.tensors.find(name);
    TORCH_CHECK(it != file.tensors.end(), where, ": missing tensor '", name, "'; the model was not changed");
    TORCH_CHECK(it->second.sizes() == target.sizes(), where, ": '", name, "' has shape ", it->second.sizes(),
                " in the file, ", target.sizes(), " in the model; the model was not changed");
    copies.emplace_back(target, it->second);
    covered.insert(name);
  };
  for (auto& item : model.named_parameters()) match(item.key(), item.value());
  for (auto& item : model.named_buffers()) match(item.key(), item.value());
  for (const auto& [name, t] : file.tensors) {
    TORCH_CHECK(covered.count(name), where, ": unexpected tensor '", name,
                "' (the model has no such parameter); the model was not changed");
  }

  c10::NoGradGuard no_grad;
  for (auto& [target, value] : copies) target.set_data(value.to(target.device()));
  for (auto& [layer, w] : installs) {
    QuantizedWeight moved = *w;
    for (auto& p : moved.parts) p = p.to(layer->weight.device());
    layer->set_method(std::make_shared<QuantizedLinearMethod>(std::move(moved)));
  }
  release_float_weights(model);
}

}  // namespace lowbit::inference
