#include <lowbit/inference/autoquant.h>

#include <ATen/ops/linear.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include <lowbit/inference/quantized_linear_method.h>
#include <lowbit/io/json.h>

namespace lowbit::inference {
namespace {

constexpr const char* kPlanFormat = "lowbit.autoquant_plan";
constexpr int64_t kPlanVersion = 1;

// Waits for the device's queued work so wall-clock time covers the kernels, not just launches.
void synchronize(const c10::Device& device) {
  if (device.is_cpu()) return;
  const auto* impl = c10::impl::getDeviceGuardImpl(device.type());
  impl->synchronizeDevice(device.has_index() ? device.index() : impl->getDevice().index());
}

// Median wall time of one call of `f`, in milliseconds.
template <typename F>
double median_ms(F&& f, int warmup, int iters, const c10::Device& device) {
  for (int i = 0; i < warmup; ++i) f();
  synchronize(device);
  std::vector<double> times;
  for (int i = 0; i < std::max(iters, 1); ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    synchronize(device);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

// 10 log10(|ref|^2 / |ref - y|^2) in float64; +inf when y equals ref.
double sqnr_db(const at::Tensor& ref, const at::Tensor& y) {
  const at::Tensor r = ref.to(at::kDouble);
  const double signal = r.square().sum().item<double>();
  const double noise = (r - y.to(at::kDouble)).square().sum().item<double>();
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(signal / noise);
}

// Parses every candidate up front, so a typo fails before any timing.
std::vector<std::pair<std::string, QuantizeConfig>> parse_candidates(const AutoquantOptions& options) {
  const auto& names = options.candidates.empty() ? default_autoquant_candidates() : options.candidates;
  std::vector<std::pair<std::string, QuantizeConfig>> out;
  for (const auto& name : names) {
    TORCH_CHECK(name != kAutoquantNone, "autoquant: 'none' is not a candidate; the float layer competes when "
                "include_unquantized is true");
    QuantizeConfig config = parse_quantize_config(name);
    out.emplace_back(config.name(), config);
  }
  return out;
}

// While the example runs: passes through at::linear and records each distinct row count's
// first input (real activations, for the SQNR) and how often that row count occurs.
class RecordingLinearMethod : public nn::LinearMethod {
 public:
  std::string name() const override { return "autoquant_recording"; }
  at::Tensor forward(nn::LinearImpl& layer, const at::Tensor& input) override {
    const int64_t rows = input.size(-1) == 0 ? 0 : input.numel() / input.size(-1);
    auto it = std::find(rows_.begin(), rows_.end(), rows);
    if (it == rows_.end()) {
      rows_.push_back(rows);
      inputs.push_back(input.detach().clone());
      counts.push_back(1);
    } else {
      ++counts[it - rows_.begin()];
    }
    return at::linear(input, layer.weight, layer.bias.defined() ? layer.bias : at::Tensor());
  }
  std::vector<at::Tensor> inputs;
  std::vector<int64_t> counts;

 private:
  std::vector<int64_t> rows_;
};

// Restores the layers' previous methods however the example ends.
struct MethodRestorer {
  std::vector<std::pair<nn::LinearImpl*, std::shared_ptr<nn::LinearMethod>>> saved;
  ~MethodRestorer() {
    for (auto& [layer, method] : saved) layer->set_method(method);
  }
};

std::vector<std::pair<std::string, torch::nn::Module*>> all_modules(torch::nn::Module& root) {
  std::vector<std::pair<std::string, torch::nn::Module*>> out{{"", &root}};
  for (const auto& item : root.named_modules("", /*include_self=*/false)) out.emplace_back(item.key(), item.value().get());
  return out;
}

std::string number_or_null(const std::optional<double>& v) { return v ? io::json_number_text(*v) : "null"; }

std::string layer_json(const AutoquantLayer& l) {
  std::string s = "{\"name\": " + io::json_quote(l.name) + ", \"out_features\": " + std::to_string(l.out_features) +
                  ", \"in_features\": " + std::to_string(l.in_features) + ", \"dtype\": " + io::json_quote(l.dtype) +
                  ", \"tokens\": [";
  for (size_t i = 0; i < l.tokens.size(); ++i)
    s += (i ? ", [" : "[") + std::to_string(l.tokens[i].first) + ", " + std::to_string(l.tokens[i].second) + "]";
  s += "], \"chosen\": " + io::json_quote(l.chosen) + ", \"candidates\": [";
  for (size_t i = 0; i < l.candidates.size(); ++i) {
    const AutoquantCandidate& c = l.candidates[i];
    // An exact candidate has infinite SQNR, which JSON cannot hold: null stands for it.
    s += std::string(i ? ", " : "") + "{\"config\": " + io::json_quote(c.config) + ", \"ms\": " +
         io::json_number_text(c.ms) + ", \"sqnr_db\": " +
         number_or_null(std::isinf(c.sqnr_db) ? std::nullopt : std::optional<double>(c.sqnr_db)) +
         ", \"skipped\": " + io::json_quote(c.skipped) + "}";
  }
  return s + "]}";
}

// A shorthand or "none", checked against the parser.
std::string checked_choice(const std::string& chosen, const std::string& where) {
  if (chosen == kAutoquantNone) return chosen;
  try {
    return parse_quantize_config(chosen).name();
  } catch (const c10::Error&) {
    TORCH_CHECK(false, where, ": chosen config '", chosen, "' is not a quantize_ shorthand");
  }
}

AutoquantLayer layer_from_json(const io::Json& v, const std::string& where) {
  io::json_check_keys(v, {"name", "out_features", "in_features", "dtype", "tokens", "chosen", "candidates"}, where);
  AutoquantLayer l;
  l.name = io::json_string(io::json_field(v, "name", where), "name", where);
  const std::string at = where + ": layer '" + l.name + "'";
  l.out_features = io::json_int(io::json_field(v, "out_features", at), "out_features", at);
  l.in_features = io::json_int(io::json_field(v, "in_features", at), "in_features", at);
  TORCH_CHECK(l.out_features > 0 && l.in_features > 0, at, ": out_features and in_features must be positive");
  l.dtype = io::json_string(io::json_field(v, "dtype", at), "dtype", at);
  weight_dtype_from_name(l.dtype, at);
  const io::Json& tokens = io::json_field(v, "tokens", at);
  TORCH_CHECK(tokens.kind == io::Json::Array, at, ": tokens must be a list of [rows, calls]");
  for (const io::Json& t : tokens.items) {
    TORCH_CHECK(t.kind == io::Json::Array && t.items.size() == 2, at, ": tokens must be a list of [rows, calls]");
    l.tokens.emplace_back(io::json_int(t.items[0], "rows", at), io::json_int(t.items[1], "calls", at));
  }
  l.chosen = checked_choice(io::json_string(io::json_field(v, "chosen", at), "chosen", at), at);
  const io::Json& cands = io::json_field(v, "candidates", at);
  TORCH_CHECK(cands.kind == io::Json::Array, at, ": candidates must be a list");
  for (const io::Json& c : cands.items) {
    io::json_check_keys(c, {"config", "ms", "sqnr_db", "skipped"}, at);
    AutoquantCandidate cand;
    cand.config = io::json_string(io::json_field(c, "config", at), "config", at);
    cand.ms = io::json_number(io::json_field(c, "ms", at), "ms", at);
    const io::Json& sq = io::json_field(c, "sqnr_db", at);
    cand.sqnr_db = sq.kind == io::Json::Null ? std::numeric_limits<double>::infinity()
                                             : io::json_number(sq, "sqnr_db", at);
    cand.skipped = io::json_string(io::json_field(c, "skipped", at), "skipped", at);
    l.candidates.push_back(std::move(cand));
  }
  return l;
}

}  // namespace

const std::vector<std::string>& default_autoquant_candidates() {
  static const std::vector<std::string> names{"int8wo", "int8dq", "int4wo-128", "float8wo_e4m3", "float8dq_e4m3_row"};
  return names;
}

AutoquantLayer autoquant_layer(const std::string& name, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               const std::vector<at::Tensor>& inputs, const std::vector<int64_t>& counts,
                               const AutoquantOptions& options) {
  TORCH_CHECK(weight.dim() == 2, "autoquant: layer '", name, "': weight must be 2-D, got shape ", weight.sizes());
  TORCH_CHECK(!inputs.empty() && inputs.size() == counts.size(), "autoquant: layer '", name,
              "': needs one recorded input per call count (got ", inputs.size(), " inputs, ", counts.size(),
              " counts)");
  const auto candidates = parse_candidates(options);
  c10::NoGradGuard no_grad;
  const c10::Device device = weight.device();
  AutoquantLayer layer;
  layer.name = name;
  layer.out_features = weight.size(0);
  layer.in_features = weight.size(1);
  layer.dtype = weight_dtype_name(weight.scalar_type());
  for (size_t i = 0; i < inputs.size(); ++i) {
    TORCH_CHECK(inputs[i].dim() >= 1 && inputs[i].size(-1) == layer.in_features && counts[i] >= 1, "autoquant: layer '",
                name, "': recorded input ", i, " of shape ", inputs[i].sizes(), " does not fit in_features ",
                layer.in_features, " or has no calls");
    layer.tokens.emplace_back(inputs[i].numel() / layer.in_features, counts[i]);
  }
  const at::Tensor b = bias.value_or(at::Tensor());
  const at::Tensor reference = at::linear(inputs[0], weight, b);

  // Total time of the example's calls: sum over shapes of calls * median time per call.
  auto total_ms = [&](const auto& run) {
    double ms = 0;
    for (size_t i = 0; i < inputs.size(); ++i)
      ms += counts[i] * median_ms([&] { run(inputs[i]); }, options.warmup, options.iters, device);
    return ms;
  };
  if (options.include_unquantized) {
    AutoquantCandidate c;
    c.config = kAutoquantNone;
    c.ms = total_ms([&](const at::Tensor& x) { return at::linear(x, weight, b); });
    layer.candidates.push_back(c);
  }
  for (const auto& [shorthand, config] : candidates) {
    AutoquantCandidate c;
    c.config = shorthand;
    if (auto why = unsupported_reason(config, layer.out_features, layer.in_features, weight.scalar_type())) {
      c.skipped = *why;
      layer.candidates.push_back(c);
      continue;
    }
    const QuantizedWeight q = quantize_weight(weight.detach(), config);
    c.sqnr_db = sqnr_db(reference, quantized_linear(inputs[0], q, bias));
    c.ms = total_ms([&](const at::Tensor& x) { return quantized_linear(x, q, bias); });
    layer.candidates.push_back(c);
  }

  // The fastest measured candidate within min_sqnr; the float layer has no quantization error.
  const AutoquantCandidate* best = nullptr;
  for (const auto& c : layer.candidates) {
    if (!c.skipped.empty() || (options.min_sqnr && c.sqnr_db < *options.min_sqnr)) continue;
    if (!best || c.ms < best->ms) best = &c;
  }
  layer.chosen = best ? best->config : kAutoquantNone;
  return layer;
}

AutoquantPlan autoquant(torch::nn::Module& model, const std::function<void()>& run_example,
                        const AutoquantOptions& options) {
  parse_candidates(options);  // fail on a bad candidate before running anything
  std::vector<std::pair<std::string, nn::LinearImpl*>> layers;
  std::vector<std::shared_ptr<RecordingLinearMethod>> recorders;
  {
    MethodRestorer restore;
    for (const auto& [name, module] : all_modules(model)) {
      auto* layer = dynamic_cast<nn::LinearImpl*>(module);
      if (!layer || layer_skip_reason(name, *layer, options.select)) continue;
      restore.saved.emplace_back(layer, layer->method_ptr());
      recorders.push_back(std::make_shared<RecordingLinearMethod>());
      layer->set_method(recorders.back());
      layers.emplace_back(name, layer);
    }
    c10::NoGradGuard no_grad;
    run_example();
  }
  AutoquantPlan plan;
  plan.min_sqnr = options.min_sqnr;
  plan.device = layers.empty() ? "cpu" : layers.front().second->weight.device().str();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& [name, layer] = layers[i];
    const RecordingLinearMethod& rec = *recorders[i];
    if (rec.inputs.empty()) continue;  // not called by the example: nothing to measure
    std::optional<at::Tensor> bias;
    if (layer->bias.defined()) bias = layer->bias.detach();
    plan.layers.push_back(autoquant_layer(name, layer->weight.detach(), bias, rec.inputs, rec.counts, options));
  }
  apply_autoquant_plan(model, plan);
  return plan;
}

nn::ConvertSummary apply_autoquant_plan(torch::nn::Module& model, const AutoquantPlan& plan) {
  std::map<std::string, nn::LinearImpl*> by_name;
  for (const auto& [name, module] : all_modules(model)) {
    if (auto* layer = dynamic_cast<nn::LinearImpl*>(module)) by_name[name] = layer;
  }
  std::map<std::string, QuantizeConfig> configs;
  for (const AutoquantLayer& l : plan.layers) {
    if (l.chosen == kAutoquantNone) continue;
    auto it = by_name.find(l.name);
    TORCH_CHECK(it != by_name.end(), "apply_autoquant_plan: the plan quantizes '", l.name,
                "' but the model has no lowbit::nn::Linear of that name; the model was not changed");
    const nn::LinearImpl& layer = *it->second;
    TORCH_CHECK(layer.options.out_features() == l.out_features && layer.options.in_features() == l.in_features,
                "apply_autoquant_plan: '", l.name, "' is (", l.out_features, ", ", l.in_features, ") in the plan, (",
                layer.options.out_features(), ", ", layer.options.in_features(),
                ") in the model; the model was not changed");
    const QuantizeConfig config = parse_quantize_config(l.chosen);
    auto why = layer_skip_reason(l.name, layer, {});
    if (!why) why = unsupported_reason(config, l.out_features, l.in_features, layer.weight.scalar_type());
    TORCH_CHECK(!why, "apply_autoquant_plan: cannot quantize '", l.name, "' as ", l.chosen, ": ", *why,
                "; the model was not changed");
    configs.emplace(l.name, config);
  }
  auto skip = [&](const std::string& name, const nn::LinearImpl&) -> std::optional<std::string> {
    if (configs.count(name)) return std::nullopt;
    return plan.find(name) ? "autoquant kept it in high precision" : "not in the autoquant plan";
  };
  auto make = [&](const std::string& name, nn::LinearImpl& layer) -> std::shared_ptr<nn::LinearMethod> {
    return std::make_shared<QuantizedLinearMethod>(quantize_weight(layer.weight.detach(), configs.at(name)));
  };
  nn::ConvertSummary summary = nn::swap_linear_methods(model, skip, make, "autoquant");
  release_float_weights(model);
  return summary;
}

const AutoquantLayer* AutoquantPlan::find(const std::string& name) const {
  for (const auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

std::string AutoquantPlan::to_json() const {
  std::string s = "{\"format\": \"" + std::string(kPlanFormat) + "\", \"version\": " + std::to_string(kPlanVersion) +
                  ", \"device\": " + io::json_quote(device) + ", \"min_sqnr\": " + number_or_null(min_sqnr) +
                  ", \"layers\": [";
  for (size_t i = 0; i < layers.size(); ++i) s += (i ? ",\n  " : "\n  ") + autoquant_layer_to_json(layers[i]);
  return s + "\n]}\n";
}

std::string autoquant_layer_to_json(const AutoquantLayer& layer) { return layer_json(layer); }

AutoquantLayer autoquant_layer_from_json(const std::string& text, const std::string& source) {
  const std::string where = "autoquant plan " + source;
  return layer_from_json(io::parse_json(text, where + ": malformed JSON"), where);
}

AutoquantPlan AutoquantPlan::from_json(const std::string& text, const std::string& source) {
  const std::string where = "autoquant plan " + source;
  const io::Json v = io::parse_json(text, where + ": malformed JSON");
  io::json_check_keys(v, {"format", "version", "device", "min_sqnr", "layers"}, where);
  TORCH_CHECK(io::json_string(io::json_field(v, "format", where), "format", where) == kPlanFormat, where,
              ": format is not \"", kPlanFormat, "\" (not an autoquant plan?)");
  const int64_t version = io::json_int(io::json_field(v, "version", where), "version", where);
  TORCH_CHECK(version == kPlanVersion, where, ": version ", version, " is not supported; this lowbit reads version ",
              kPlanVersion);
  AutoquantPlan plan;
  plan.device = io::json_string(io::json_field(v, "device", where), "device", where);
  const io::Json& min_sqnr = io::json_field(v, "min_sqnr", where);
  if (min_sqnr.kind != io::Json::Null) plan.min_sqnr = io::json_number(min_sqnr, "min_sqnr", where);
  const io::Json& layers = io::json_field(v, "layers", where);
  TORCH_CHECK(layers.kind == io::Json::Array, where, ": layers must be a list");
  for (const io::Json& l : layers.items) {
    plan.layers.push_back(layer_from_json(l, where));
    for (size_t i = 0; i + 1 < plan.layers.size(); ++i)
      TORCH_CHECK(plan.layers[i].name != plan.layers.back().name, where, ": layer '", plan.layers.back().name,
                  "' appears twice");
  }
  return plan;
}

void AutoquantPlan::save(const std::string& path) const {
  // Written whole to a temporary, then renamed: a crash never leaves half a plan.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TORCH_CHECK(out, "autoquant plan: cannot write ", tmp);
    out << to_json();
    TORCH_CHECK(out.good(), "autoquant plan: writing ", tmp, " failed");
  }
  TORCH_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "autoquant plan: cannot rename ", tmp, " to ", path);
}

AutoquantPlan AutoquantPlan::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "autoquant plan: cannot read ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str(), path);
}

std::string AutoquantPlan::to_string() const {
  std::ostringstream out;
  out << "autoquant plan (timed on " << device;
  if (min_sqnr) out << ", min_sqnr " << *min_sqnr << " dB";
  out << ")\n";
  for (const auto& l : layers) {
    out << "  " << (l.name.empty() ? "<root>" : l.name) << " (" << l.out_features << "x" << l.in_features << ", "
        << l.dtype << ") -> " << l.chosen << "\n";
    for (const auto& c : l.candidates) {
      out << "      " << std::left << std::setw(20) << c.config;
      if (!c.skipped.empty()) {
        out << "skipped: " << c.skipped << "\n";
        continue;
      }
      out << std::fixed << std::setprecision(4) << c.ms << " ms";
      if (!std::isinf(c.sqnr_db)) out << std::setprecision(1) << "  " << c.sqnr_db << " dB";
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace lowbit::inference
