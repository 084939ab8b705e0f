// autoquant: pick each linear's quantize_ config by measuring it. A forward pass over example
// inputs records every selected linear's input shapes (and one real input per shape); then each
// candidate config is timed per layer on those shapes, the fastest one whose output SQNR against
// the float layer meets `min_sqnr` is kept, and the resulting plan is applied. The plan is JSON,
// so a later run loads it and skips the timing. The Python face (lowbit.autoquant) records with
// hooks and calls the same per-layer measurement (the lowbit::autoquant_layer op) and plan format.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <lowbit/inference/quantize.h>

namespace lowbit::inference {

// The plan's label for "leave this layer in high precision".
constexpr const char* kAutoquantNone = "none";

// The candidates timed when none are given: the formats with fast paths on GPUs.
const std::vector<std::string>& default_autoquant_candidates();

struct AutoquantOptions {
  std::vector<std::string> candidates;  // shorthands; empty: default_autoquant_candidates()
  std::optional<double> min_sqnr;       // dB; candidates below it are never chosen
  bool include_unquantized = true;      // the float layer competes too (chosen when it is fastest)
  int warmup = 2;                       // untimed calls per (candidate, shape)
  int iters = 10;                       // timed calls per (candidate, shape); the median counts
  QuantizeOptions select;               // which layers take part (filter, modules_to_not_convert)
};

// One candidate's measurement on one layer.
struct AutoquantCandidate {
  std::string config;  // a shorthand, or "none" for the float layer
  double ms = 0;       // sum over recorded shapes of (calls of that shape) * (median time per call)
  double sqnr_db = std::numeric_limits<double>::infinity();  // output vs the float layer, first shape
  std::string skipped;  // why it was not measured (shape or dtype the format cannot take); empty if measured
};

// One layer of a plan.
struct AutoquantLayer {
  std::string name;  // qualified module name
  int64_t out_features = 0, in_features = 0;
  std::string dtype;                                 // the weight's dtype, e.g. "bfloat16"
  std::vector<std::pair<int64_t, int64_t>> tokens;  // (rows M of a recorded input, calls with that M)
  std::string chosen = kAutoquantNone;               // a shorthand, or "none"
  std::vector<AutoquantCandidate> candidates;
};

struct AutoquantPlan {
  std::string device;  // where it was timed, e.g. "cuda" or "cpu"
  std::optional<double> min_sqnr;
  std::vector<AutoquantLayer> layers;

  // The layer named `name`, or nullptr.
  const AutoquantLayer* find(const std::string& name) const;
  // JSON: {"format": "lowbit.autoquant_plan", "version": 1, "device", "min_sqnr", "layers": [...]}.
  std::string to_json() const;
  // Reads to_json's output; any other text is a c10::Error naming `source` and the problem.
  static AutoquantPlan from_json(const std::string& text, const std::string& source = "<string>");
  void save(const std::string& path) const;
  static AutoquantPlan load(const std::string& path);
  // A table: layer | shape | chosen | ms per candidate.
  std::string to_string() const;
};

// Measures the float layer (weight (N, K), bias) and every candidate on `inputs` (one real input
// (..., K) per distinct row count, called counts[i] times in the example) and picks the fastest
// candidate within options.min_sqnr. Runs on the weight's device; synchronizes it around timings.
AutoquantLayer autoquant_layer(const std::string& name, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               const std::vector<at::Tensor>& inputs, const std::vector<int64_t>& counts,
                               const AutoquantOptions& options = {});

// One layer as the JSON object the plan's "layers" list holds, and back (the Python face builds
// its plan from the lowbit::autoquant_layer op's output this way).
std::string autoquant_layer_to_json(const AutoquantLayer& layer);
AutoquantLayer autoquant_layer_from_json(const std::string& text, const std::string& source = "<string>");

// Records the selected lowbit::nn::Linear layers' inputs while `run_example` runs the model (in
// no-grad mode), measures every recorded layer with autoquant_layer, applies the plan with
// apply_autoquant_plan and returns it. Layers the example never calls stay in high precision.
AutoquantPlan autoquant(torch::nn::Module& model, const std::function<void()>& run_example,
                        const AutoquantOptions& options = {});

// Quantizes each plan layer whose choice is not "none" with that config. Every named layer must
// exist as a plain lowbit::nn::Linear of the recorded shape; otherwise it is an error and, as with
// every convert, the model is left as it was.
nn::ConvertSummary apply_autoquant_plan(torch::nn::Module& model, const AutoquantPlan& plan);

}  // namespace lowbit::inference
