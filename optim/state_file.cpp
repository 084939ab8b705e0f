// save_state / load_state: the cross-face optimizer state file (format in state_file.h).
#include <lowbit/optim/state_file.h>

#include <c10/util/Exception.h>

#include <cstdio>
#include <map>
#include <sstream>

#include <lowbit/io/safetensors.h>
#include <lowbit/ops/adamw_lowbit_checks.h>

namespace lowbit::optim {
namespace {

constexpr const char* kFormat = "lowbit.optim/1";
constexpr const char* kStateNames[] = {"step", "exp_avg", "exp_avg_scale", "exp_avg_sq", "exp_avg_sq_scale"};

std::string exact(double x) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.17g", x);
  return buf;
}

const std::string& meta(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  TORCH_CHECK(it != m.end(), "lowbit::optim::load_state: '", path, "' has no metadata '", key,
              "' (not an optimizer state written by save_state?)");
  return it->second;
}

double parse_double(const std::string& s, const std::string& key) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TORCH_CHECK(used == s.size() && !s.empty(), "lowbit::optim::load_state: metadata '", key, "' = '", s,
              "' is not a number");
  return v;
}

int64_t parse_int(const std::string& s, const std::string& key) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TORCH_CHECK(used == s.size() && !s.empty(), "lowbit::optim::load_state: metadata '", key, "' = '", s,
              "' is not an integer");
  return v;
}

at::Tensor& state_tensor(AdamWLowBitParamState& s, int k) {
  switch (k) {
    case 0: return s.step();
    case 1: return s.exp_avg();
    case 2: return s.exp_avg_scale();
    case 3: return s.exp_avg_sq();
    default: return s.exp_avg_sq_scale();
  }
}

// Checks that a loaded state fits parameter `index` under this format and block size.
void check_loaded_state(const at::Tensor& p, int64_t index, AdamWLowBitParamState& s, const std::string& format,
                        int64_t block_size, const std::string& path) {
  const at::Tensor grad_like = p.detach();  // the checks want a gradient; the parameter has its shape and dtype
  try {
    ops::check_param_state(static_cast<size_t>(index), p.detach(), grad_like, s.exp_avg(), s.exp_avg_scale(),
                           s.exp_avg_sq(), s.exp_avg_sq_scale(), s.step(), ops::parse_state_format(format), block_size);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "lowbit::optim::load_state: the state of parameter ", index, " in '", path,
                "' does not fit the optimizer's parameter: ", e.what_without_backtrace());
  }
}

}  // namespace

void save_state(const AdamWLowBit& optimizer, const std::string& path) {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata{{"format", kFormat},
                                              {"optimizer", optimizer.name()},
                                              {"state_format", optimizer.state_format()},
                                              {"num_param_groups", std::to_string(optimizer.param_groups().size())}};
  int64_t index = 0;
  for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
    const auto& group = optimizer.param_groups()[g];
    const auto& o = static_cast<const AdamWLowBitOptions&>(group.options());
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    std::string indices;
    for (const at::Tensor& p : group.params()) {
      indices += (indices.empty() ? "" : ",") + std::to_string(index);
      auto it = optimizer.state().find(p.unsafeGetTensorImpl());
      if (it != optimizer.state().end()) {
        auto& s = static_cast<AdamWLowBitParamState&>(*it->second);
        for (int k = 0; k < 5; ++k)
          tensors["state." + std::to_string(index) + "." + kStateNames[k]] = state_tensor(s, k);
      }
      ++index;
    }
    metadata[prefix + "params"] = indices;
    metadata[prefix + "lr"] = exact(o.lr());
    metadata[prefix + "beta1"] = exact(std::get<0>(o.betas()));
    metadata[prefix + "beta2"] = exact(std::get<1>(o.betas()));
    metadata[prefix + "eps"] = exact(o.eps());
    metadata[prefix + "weight_decay"] = exact(o.weight_decay());
    metadata[prefix + "block_size"] = std::to_string(o.block_size());
    metadata[prefix + "bf16_stochastic_round"] = o.bf16_stochastic_round() ? "true" : "false";
    metadata[prefix + "min_quantized_size"] = std::to_string(o.min_quantized_size());
  }
  io::save_safetensors(path, tensors, metadata);
}

void load_state(AdamWLowBit& optimizer, const std::string& path) {
  io::SafetensorsContents file = io::load_safetensors(path);
  const auto& md = file.metadata;
  TORCH_CHECK(meta(md, "format", path) == kFormat, "lowbit::optim::load_state: '", path, "' has format '",
              meta(md, "format", path), "'; expected '", kFormat, "'");
  TORCH_CHECK(meta(md, "state_format", path) == optimizer.state_format(), "lowbit::optim::load_state: '", path,
              "' holds a '", meta(md, "state_format", path), "' state (", meta(md, "optimizer", path),
              ") but the optimizer is ", optimizer.name(), " ('", optimizer.state_format(), "')");
  const int64_t groups = parse_int(meta(md, "num_param_groups", path), "num_param_groups");
  TORCH_CHECK(groups == static_cast<int64_t>(optimizer.param_groups().size()), "lowbit::optim::load_state: '", path,
              "' has ", groups, " parameter groups but the optimizer has ", optimizer.param_groups().size());
  // Everything is parsed and checked first; the optimizer changes only when all of it fits.
  std::vector<AdamWLowBitOptions> options;
  std::vector<std::pair<at::Tensor, std::unique_ptr<AdamWLowBitParamState>>> states;
  int64_t index = 0;
  for (int64_t g = 0; g < groups; ++g) {
    auto& group = optimizer.param_groups()[g];
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    auto key = [&](const char* k) { return meta(md, prefix + k, path); };
    std::string expected_indices;
    for (size_t k = 0; k < group.params().size(); ++k)
      expected_indices += (k ? "," : "") + std::to_string(index + static_cast<int64_t>(k));
    TORCH_CHECK(key("params") == expected_indices, "lowbit::optim::load_state: group ", g, " of '", path,
                "' holds parameters [", key("params"), "] but the optimizer's group ", g, " has ",
                group.params().size(), " parameters ([", expected_indices, "])");
    AdamWLowBitOptions o(parse_double(key("lr"), prefix + "lr"));
    o.betas({parse_double(key("beta1"), prefix + "beta1"), parse_double(key("beta2"), prefix + "beta2")});
    o.eps(parse_double(key("eps"), prefix + "eps"));
    o.weight_decay(parse_double(key("weight_decay"), prefix + "weight_decay"));
    o.block_size(parse_int(key("block_size"), prefix + "block_size"));
    o.bf16_stochastic_round(key("bf16_stochastic_round") == "true");
    o.min_quantized_size(parse_int(key("min_quantized_size"), prefix + "min_quantized_size"));
    options.push_back(o);
    for (const at::Tensor& p : group.params()) {
      const std::string base = "state." + std::to_string(index) + ".";
      if (file.tensors.count(base + "step")) {
        auto s = std::make_unique<AdamWLowBitParamState>();
        for (int k = 0; k < 5; ++k) {
          auto it = file.tensors.find(base + kStateNames[k]);
          TORCH_CHECK(it != file.tensors.end(), "lowbit::optim::load_state: '", path, "' lacks tensor '", base,
                      kStateNames[k], "'");
          state_tensor(*s, k) = it->second.to(p.device());
        }
        check_loaded_state(p, index, *s, optimizer.state_format(), o.block_size(), path);
        states.emplace_back(p, std::move(s));
      }
      ++index;
    }
  }
  for (int64_t g = 0; g < groups; ++g) static_cast<AdamWLowBitOptions&>(optimizer.param_groups()[g].options()) = options[g];
  optimizer.state().clear();
  for (auto& [p, s] : states) optimizer.state()[p.unsafeGetTensorImpl()] = std::move(s);
}

}  // namespace lowbit::optim
