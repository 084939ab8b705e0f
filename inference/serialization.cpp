#include <lowbit/inference/serialization.h>

#include <c10/core/GradMode.h>

#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include <lowbit/inference/quantized_linear_method.h>
#include <lowbit/io/json.h>
#include <lowbit/io/safetensors.h>

namespace lowbit::inference {
namespace {

constexpr const char* kVersionKey = "lowbit.format_version";
constexpr const char* kVersion = "1";
const std::string kMetaPrefix = "lowbit.quantized.";

struct WeightEntry {
  std::string format;
  int64_t out_features = 0, in_features = 0;
  std::string dtype;
  int64_t parts = 0;
};

std::string describe(const QuantizedWeight& w) {
  return "{\"format\": " + io::json_quote(w.config.name()) + ", \"shape\": [" + std::to_string(w.out_features) +
         ", " + std::to_string(w.in_features) + "], \"dtype\": \"" + weight_dtype_name(w.dtype) +
         "\", \"parts\": " + std::to_string(w.parts.size()) + "}";
}

// Reads exactly the object `describe` writes (any key order, any whitespace; unknown keys are errors).
WeightEntry parse_entry(const std::string& text, const std::string& where) {
  const io::Json v = io::parse_json(text, where + ": malformed metadata");
  io::json_check_keys(v, {"format", "shape", "dtype", "parts"}, where);
  WeightEntry e;
  e.format = io::json_string(io::json_field(v, "format", where), "format", where);
  e.dtype = io::json_string(io::json_field(v, "dtype", where), "dtype", where);
  e.parts = io::json_int(io::json_field(v, "parts", where), "parts", where);
  const io::Json& shape = io::json_field(v, "shape", where);
  TORCH_CHECK(shape.kind == io::Json::Array && shape.items.size() == 2, where, ": shape must be [out_features, in_features]");
  e.out_features = io::json_int(shape.items[0], "out_features", where);
  e.in_features = io::json_int(shape.items[1], "in_features", where);
  TORCH_CHECK(e.out_features > 0 && e.in_features > 0 && e.parts > 0, where, ": shape and parts must be positive");
  return e;
}

// Every module with its qualified name, the root included (it may live on the stack).
std::vector<std::pair<std::string, torch::nn::Module*>> all_modules(torch::nn::Module& root) {
  std::vector<std::pair<std::string, torch::nn::Module*>> out{{"", &root}};
  for (const auto& item : root.named_modules("", /*include_self=*/false)) out.emplace_back(item.key(), item.value().get());
  return out;
}

std::string join(const std::string& prefix, const std::string& name) { return prefix.empty() ? name : prefix + "." + name; }

}  // namespace

void write_quantized_file(const std::string& path, const QuantizedFile& file) {
  std::map<std::string, at::Tensor> tensors = file.tensors;
  std::map<std::string, std::string> metadata{{kVersionKey, kVersion}};
  for (const auto& [key, w] : file.weights) {
    TORCH_CHECK(!tensors.count(key), "save_quantized: '", key, "' is both a plain and a quantized tensor");
    for (size_t i = 0; i < w.parts.size(); ++i) tensors[key + ".part" + std::to_string(i)] = w.parts[i];
    metadata[kMetaPrefix + key] = describe(w);
  }
  io::save_safetensors(path, tensors, metadata);
}

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

QuantizedFile read_quantized_file(const std::string& path) {
  const std::string where = "load_quantized: " + path;
  io::SafetensorsContents contents;
  try {
    contents = io::load_safetensors(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, where, ": not a readable safetensors file (", e.what_without_backtrace(), ")");
  }
  auto version = contents.metadata.find(kVersionKey);
  TORCH_CHECK(version != contents.metadata.end() && version->second == kVersion, where, ": ", kVersionKey,
              " is missing or not \"", kVersion, "\" (not a save_quantized file?)");
  QuantizedFile file;
  std::set<std::string> used;
  for (const auto& [key, text] : contents.metadata) {
    if (key.rfind(kMetaPrefix, 0) != 0) continue;
    const std::string name = key.substr(kMetaPrefix.size());
    const std::string ctx = where + ": '" + name + "'";
    const WeightEntry e = parse_entry(text, ctx);
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < e.parts && i < 8; ++i) {
      auto it = contents.tensors.find(name + ".part" + std::to_string(i));
      TORCH_CHECK(it != contents.tensors.end(), ctx, " is missing its part", i);
      parts.push_back(it->second);
      used.insert(it->first);
    }
    try {
      file.weights.emplace(name, quantized_weight_from_parts(parse_quantize_config(e.format), parts, e.out_features,
                                                             e.in_features, weight_dtype_from_name(e.dtype, ctx)));
    } catch (const c10::Error& err) {
      TORCH_CHECK(false, ctx, ": ", err.what_without_backtrace());
    }
  }
  for (auto& [name, t] : contents.tensors) {
    if (!used.count(name)) file.tensors.emplace(name, t);
  }
  return file;
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
