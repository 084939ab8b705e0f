// The optimizer state file (format in state_file.h): the one reader and writer, the checks of a
// file against an optimizer, the JSON manifest of the dispatcher ops, and the C++ face's
// save_state / load_state.
#include <lowbit/optim/state_file.h>

#include <c10/util/Exception.h>

#include <cstdio>
#include <sstream>

#include <lowbit/io/json.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/ops/adamw_lowbit_checks.h>

namespace lowbit::optim {
namespace {

constexpr const char* kFormat = "lowbit.optim/1";

std::string exact(double x) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.17g", x);
  return buf;
}

const std::string& meta(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  TORCH_CHECK_VALUE(it != m.end(), "load_state: '", path, "' has no metadata '", key,
                    "' (not an optimizer state written by save_state?)");
  return it->second;
}

double parse_double(const std::string& s, const std::string& key, const std::string& path) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TORCH_CHECK_VALUE(used == s.size() && !s.empty(), "load_state: metadata '", key, "' = '", s, "' of '", path,
                    "' is not a number");
  return v;
}

int64_t parse_int(const std::string& s, const std::string& key, const std::string& path) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TORCH_CHECK_VALUE(used == s.size() && !s.empty(), "load_state: metadata '", key, "' = '", s, "' of '", path,
                    "' is not an integer");
  return v;
}

std::vector<int64_t> parse_indices(const std::string& s, const std::string& key, const std::string& path) {
  std::vector<int64_t> out;
  if (s.empty()) return out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(parse_int(item, key, path));
  return out;
}

std::string join(const std::vector<int64_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out;
}

const std::string& optimizer_name_of(const std::string& state_format) {
  static const std::map<std::string, std::string> names = {
      {"8bit", "AdamW8bit"}, {"4bit", "AdamW4bit"}, {"fp8", "AdamWFp8"}};
  auto it = names.find(state_format);
  TORCH_CHECK_VALUE(it != names.end(), "optimizer state: unknown state_format '", state_format,
                    "'; allowed: '8bit', '4bit', 'fp8'");
  return it->second;
}

}  // namespace

const std::array<const char*, 5>& state_tensor_names() {
  static const std::array<const char*, 5> names = {"step", "exp_avg", "exp_avg_scale", "exp_avg_sq",
                                                   "exp_avg_sq_scale"};
  return names;
}

// ---- the file --------------------------------------------------------------------------------

void write_state_file(const std::string& path, const StateFile& file) {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata{{"format", kFormat},
                                              {"optimizer", file.optimizer},
                                              {"state_format", file.state_format},
                                              {"num_param_groups", std::to_string(file.groups.size())}};
  for (size_t g = 0; g < file.groups.size(); ++g) {
    const StateFileGroup& group = file.groups[g];
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    metadata[prefix + "params"] = join(group.params);
    metadata[prefix + "lr"] = exact(group.lr);
    metadata[prefix + "beta1"] = exact(group.beta1);
    metadata[prefix + "beta2"] = exact(group.beta2);
    metadata[prefix + "eps"] = exact(group.eps);
    metadata[prefix + "weight_decay"] = exact(group.weight_decay);
    metadata[prefix + "block_size"] = std::to_string(group.block_size);
    metadata[prefix + "bf16_stochastic_round"] = group.bf16_stochastic_round ? "true" : "false";
    metadata[prefix + "min_quantized_size"] = std::to_string(group.min_quantized_size);
  }
  for (const auto& [index, state] : file.states)
    for (size_t k = 0; k < state.size(); ++k)
      tensors["state." + std::to_string(index) + "." + state_tensor_names()[k]] = state[k];
  io::save_safetensors(path, tensors, metadata);
}

StateFile read_state_file(const std::string& path) {
  io::SafetensorsContents contents;
  try {
    contents = io::load_safetensors(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK_VALUE(false, "load_state: cannot read '", path, "' as an optimizer state file: ",
                      e.what_without_backtrace());
  }
  const auto& md = contents.metadata;
  TORCH_CHECK_VALUE(meta(md, "format", path) == kFormat, "load_state: '", path, "' has format '",
                    meta(md, "format", path), "'; expected '", kFormat, "'");
  StateFile file;
  file.optimizer = meta(md, "optimizer", path);
  file.state_format = meta(md, "state_format", path);
  const int64_t groups = parse_int(meta(md, "num_param_groups", path), "num_param_groups", path);
  TORCH_CHECK_VALUE(groups >= 0, "load_state: '", path, "' has ", groups, " parameter groups");
  for (int64_t g = 0; g < groups; ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    auto key = [&](const char* k) { return meta(md, prefix + k, path); };
    StateFileGroup group;
    group.params = parse_indices(key("params"), prefix + "params", path);
    group.lr = parse_double(key("lr"), prefix + "lr", path);
    group.beta1 = parse_double(key("beta1"), prefix + "beta1", path);
    group.beta2 = parse_double(key("beta2"), prefix + "beta2", path);
    group.eps = parse_double(key("eps"), prefix + "eps", path);
    group.weight_decay = parse_double(key("weight_decay"), prefix + "weight_decay", path);
    group.block_size = parse_int(key("block_size"), prefix + "block_size", path);
    const std::string& sr = key("bf16_stochastic_round");
    TORCH_CHECK_VALUE(sr == "true" || sr == "false", "load_state: metadata '", prefix,
                      "bf16_stochastic_round' of '", path, "' is '", sr, "'; expected 'true' or 'false'");
    group.bf16_stochastic_round = sr == "true";
    group.min_quantized_size = parse_int(key("min_quantized_size"), prefix + "min_quantized_size", path);
    for (int64_t index : group.params) {
      const std::string base = "state." + std::to_string(index) + ".";
      if (!contents.tensors.count(base + "step")) continue;  // never had a gradient
      ParamStateTensors state;
      for (size_t k = 0; k < state.size(); ++k) {
        auto it = contents.tensors.find(base + state_tensor_names()[k]);
        TORCH_CHECK_VALUE(it != contents.tensors.end(), "load_state: '", path, "' lacks tensor '", base,
                          state_tensor_names()[k], "'");
        state[k] = std::move(it->second);
      }
      file.states[index] = std::move(state);
    }
    file.groups.push_back(std::move(group));
  }
  return file;
}

void fit_state_file(StateFile& file, const std::string& state_format,
                    const std::vector<std::vector<at::Tensor>>& group_params, const std::string& path) {
  TORCH_CHECK_VALUE(file.state_format == state_format, "load_state: '", path, "' holds a '", file.state_format,
                    "' state (", file.optimizer, ") but the optimizer is ", optimizer_name_of(state_format), " ('",
                    state_format, "')");
  TORCH_CHECK_VALUE(file.groups.size() == group_params.size(), "load_state: '", path, "' has ", file.groups.size(),
                    " parameter groups but the optimizer has ", group_params.size());
  const core::StateFormat format = ops::parse_state_format(state_format);
  int64_t index = 0;
  for (size_t g = 0; g < file.groups.size(); ++g) {
    const StateFileGroup& group = file.groups[g];
    try {  // the hyperparameters as the optimizers' constructors check them
      ops::check_adamw_hyperparameters(group.lr, group.beta1, group.beta2, group.eps, group.weight_decay);
      ops::check_block_size(group.block_size);
      TORCH_CHECK(group.min_quantized_size >= 0, "min_quantized_size must be >= 0, got ", group.min_quantized_size);
    } catch (const c10::Error& e) {
      TORCH_CHECK_VALUE(false, "load_state: group ", g, " of '", path, "': ", e.what_without_backtrace());
    }
    std::vector<int64_t> expected;
    for (size_t k = 0; k < group_params[g].size(); ++k) expected.push_back(index + static_cast<int64_t>(k));
    TORCH_CHECK_VALUE(group.params == expected, "load_state: group ", g, " of '", path, "' holds parameters [",
                      join(group.params), "] but the optimizer's group ", g, " has ", group_params[g].size(),
                      " parameters ([", join(expected), "])");
    for (const at::Tensor& param : group_params[g]) {
      auto it = file.states.find(index);
      if (it != file.states.end()) {
        ParamStateTensors& s = it->second;
        for (at::Tensor& t : s) t = t.to(param.device());
        const at::Tensor p = param.detach();
        try {  // the step op's own checks, with the parameter standing in for its gradient
          ops::check_param_state(static_cast<size_t>(index), p, p, s[1], s[2], s[3], s[4], s[0], format,
                                 group.block_size);
        } catch (const c10::Error& e) {
          TORCH_CHECK_VALUE(false, "load_state: state.", index, " in '", path, "' does not fit parameter ", index,
                            " (shape ", p.sizes(), ", ", p.scalar_type(), "): ", e.what_without_backtrace());
        }
      }
      ++index;
    }
  }
}

// ---- the manifest of the dispatcher ops -------------------------------------------------------

std::string state_file_manifest(const StateFile& file) {
  std::string out = "{\"optimizer\":" + io::json_quote(file.optimizer) +
                    ",\"state_format\":" + io::json_quote(file.state_format) + ",\"param_groups\":[";
  for (size_t g = 0; g < file.groups.size(); ++g) {
    const StateFileGroup& group = file.groups[g];
    out += std::string(g ? "," : "") + "{\"params\":[" + join(group.params) + "],\"lr\":" +
           io::json_number_text(group.lr) + ",\"betas\":[" + io::json_number_text(group.beta1) + "," +
           io::json_number_text(group.beta2) + "],\"eps\":" + io::json_number_text(group.eps) +
           ",\"weight_decay\":" + io::json_number_text(group.weight_decay) +
           ",\"block_size\":" + std::to_string(group.block_size) +
           ",\"bf16_stochastic_round\":" + (group.bf16_stochastic_round ? "true" : "false") +
           ",\"min_quantized_size\":" + std::to_string(group.min_quantized_size) + "}";
  }
  out += "],\"state\":[";
  bool first = true;
  for (const auto& [index, state] : file.states) {
    out += (first ? "" : ",") + std::to_string(index);
    first = false;
  }
  return out + "]}";
}

std::vector<at::Tensor> state_file_tensors(const StateFile& file) {
  std::vector<at::Tensor> out;
  for (const auto& [index, state] : file.states) out.insert(out.end(), state.begin(), state.end());
  return out;
}

StateFile state_file_from_manifest(const std::string& manifest, at::TensorList tensors) {
  const std::string ctx = "optimizer state manifest";
  const io::Json doc = io::parse_json(manifest, ctx);
  TORCH_CHECK_VALUE(doc.kind == io::Json::Object, ctx, ": not a JSON object");
  io::json_check_keys(doc, {"optimizer", "state_format", "param_groups", "state"}, ctx);
  StateFile file;
  file.optimizer = io::json_string(io::json_field(doc, "optimizer", ctx), "optimizer", ctx);
  file.state_format = io::json_string(io::json_field(doc, "state_format", ctx), "state_format", ctx);
  TORCH_CHECK_VALUE(file.optimizer == optimizer_name_of(file.state_format), ctx, ": optimizer '", file.optimizer,
                    "' does not go with state_format '", file.state_format, "'");
  const io::Json& groups = io::json_field(doc, "param_groups", ctx);
  TORCH_CHECK_VALUE(groups.kind == io::Json::Array, ctx, ": param_groups is not a list");
  for (const io::Json& g : groups.items) {
    TORCH_CHECK_VALUE(g.kind == io::Json::Object, ctx, ": a parameter group is not an object");
    io::json_check_keys(g, {"params", "lr", "betas", "eps", "weight_decay", "block_size", "bf16_stochastic_round",
                            "min_quantized_size"},
                        ctx);
    StateFileGroup group;
    const io::Json& params = io::json_field(g, "params", ctx);
    TORCH_CHECK_VALUE(params.kind == io::Json::Array, ctx, ": params is not a list");
    for (const io::Json& p : params.items) group.params.push_back(io::json_int(p, "a parameter index", ctx));
    group.lr = io::json_number(io::json_field(g, "lr", ctx), "lr", ctx);
    const io::Json& betas = io::json_field(g, "betas", ctx);
    TORCH_CHECK_VALUE(betas.kind == io::Json::Array && betas.items.size() == 2, ctx, ": betas is not a pair");
    group.beta1 = io::json_number(betas.items[0], "beta1", ctx);
    group.beta2 = io::json_number(betas.items[1], "beta2", ctx);
    group.eps = io::json_number(io::json_field(g, "eps", ctx), "eps", ctx);
    group.weight_decay = io::json_number(io::json_field(g, "weight_decay", ctx), "weight_decay", ctx);
    group.block_size = io::json_int(io::json_field(g, "block_size", ctx), "block_size", ctx);
    const io::Json& sr = io::json_field(g, "bf16_stochastic_round", ctx);
    TORCH_CHECK_VALUE(sr.kind == io::Json::Bool, ctx, ": bf16_stochastic_round is not true or false");
    group.bf16_stochastic_round = sr.text == "true";
    group.min_quantized_size = io::json_int(io::json_field(g, "min_quantized_size", ctx), "min_quantized_size", ctx);
    file.groups.push_back(std::move(group));
  }
  const io::Json& state = io::json_field(doc, "state", ctx);
  TORCH_CHECK_VALUE(state.kind == io::Json::Array, ctx, ": state is not a list");
  TORCH_CHECK_VALUE(tensors.size() == 5 * state.items.size(), ctx, ": ", state.items.size(),
                    " parameters with a state need ", 5 * state.items.size(), " tensors, got ", tensors.size());
  for (size_t i = 0; i < state.items.size(); ++i) {
    const int64_t index = io::json_int(state.items[i], "a parameter index", ctx);
    TORCH_CHECK_VALUE(!file.states.count(index), ctx, ": parameter ", index, " appears twice in state");
    ParamStateTensors s;
    for (size_t k = 0; k < 5; ++k) s[k] = tensors[5 * i + k];
    file.states[index] = std::move(s);
  }
  return file;
}

// ---- the C++ face ------------------------------------------------------------------------------

void save_state(const AdamWLowBit& optimizer, const std::string& path) {
  StateFile file;
  file.optimizer = optimizer.name();
  file.state_format = optimizer.state_format();
  int64_t index = 0;
  for (const auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const AdamWLowBitOptions&>(group.options());
    StateFileGroup g;
    g.lr = o.lr();
    g.beta1 = std::get<0>(o.betas());
    g.beta2 = std::get<1>(o.betas());
    g.eps = o.eps();
    g.weight_decay = o.weight_decay();
    g.block_size = o.block_size();
    g.bf16_stochastic_round = o.bf16_stochastic_round();
    g.min_quantized_size = o.min_quantized_size();
    for (const at::Tensor& p : group.params()) {
      g.params.push_back(index);
      auto it = optimizer.state().find(p.unsafeGetTensorImpl());
      if (it != optimizer.state().end()) {
        const auto& s = static_cast<const AdamWLowBitParamState&>(*it->second);
        file.states[index] = {s.step(), s.exp_avg(), s.exp_avg_scale(), s.exp_avg_sq(), s.exp_avg_sq_scale()};
      }
      ++index;
    }
    file.groups.push_back(std::move(g));
  }
  write_state_file(path, file);
}

void load_state(AdamWLowBit& optimizer, const std::string& path) {
  StateFile file = read_state_file(path);
  std::vector<std::vector<at::Tensor>> group_params;
  for (const auto& group : optimizer.param_groups()) group_params.push_back(group.params());
  fit_state_file(file, optimizer.state_format(), group_params, path);
  // Everything fits: only now does the optimizer change.
  for (size_t g = 0; g < file.groups.size(); ++g) {
    const StateFileGroup& fg = file.groups[g];
    auto& o = static_cast<AdamWLowBitOptions&>(optimizer.param_groups()[g].options());
    o.lr(fg.lr).betas({fg.beta1, fg.beta2}).eps(fg.eps).weight_decay(fg.weight_decay).block_size(fg.block_size);
    o.bf16_stochastic_round(fg.bf16_stochastic_round).min_quantized_size(fg.min_quantized_size);
  }
  optimizer.state().clear();
  int64_t index = 0;
  for (const auto& params : group_params) {
    for (const at::Tensor& p : params) {
      auto it = file.states.find(index++);
      if (it == file.states.end()) continue;
      const ParamStateTensors& s = it->second;
      auto ps = std::make_unique<AdamWLowBitParamState>();
      ps->step(s[0]).exp_avg(s[1]).exp_avg_scale(s[2]).exp_avg_sq(s[3]).exp_avg_sq_scale(s[4]);
      optimizer.state()[p.unsafeGetTensorImpl()] = std::move(ps);
    }
  }
}

}  // namespace lowbit::optim
