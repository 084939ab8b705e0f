// quantize_: post-training quantization of the lowbit::nn::Linear layers of a model.
#pragma once

#include <c10/core/Device.h>

#include <optional>
#include <string>
#include <vector>

#include <lowbit/inference/config.h>
#include <lowbit/nn/convert.h>

namespace lowbit::inference {

struct QuantizeOptions {
  // Selects layers by (qualified name, layer); all when empty.
  nn::LinearFilter filter = nullptr;
  // Qualified-name prefixes left in high precision (diffusers' modules_to_not_convert): "blocks.0"
  // skips "blocks.0" and everything under it.
  std::vector<std::string> modules_to_not_convert;
  // Quantize each weight on this device (moved there one at a time, keeping peak memory low); the
  // packed weight and the layer's bias then live there. Default: where each weight already is.
  std::optional<c10::Device> device;
};

// The selection rule of quantize_, autoquant and QAT for either face: why the layer `name` is left
// alone whatever the config, or nullopt if it may be quantized. `method` is its current linear
// method ("plain", a quantized format's name, "float8_tensorwise", "fake_quant_int4dq-32", ...),
// `quantized` whether that method holds a quantized weight, `filter_accepts` the user filter's verdict.
// Checked in order: a modules_to_not_convert prefix ("blocks.0" covers "blocks.0" and everything
// under it), the filter, already quantized, another method installed.
std::optional<std::string> selection_skip_reason(const std::string& name, const std::string& method, bool quantized,
                                                 bool filter_accepts,
                                                 const std::vector<std::string>& modules_to_not_convert);

// selection_skip_reason for a lowbit::nn::Linear under `options`.
std::optional<std::string> layer_skip_reason(const std::string& name, const nn::LinearImpl& layer,
                                             const QuantizeOptions& options);

// Installs a QuantizedLinearMethod (packed weight of `config`) on every selected lowbit::nn::Linear.
// Layers whose shapes the format cannot take are skipped with the reason in the summary; plain
// torch::nn::Linear modules are reported as skipped. All-or-nothing: every weight is quantized
// before any method is installed, so an error leaves the model as it was. Afterwards the packed
// weight is the only copy: each quantized layer's float `weight` is released (an empty tensor of
// its dtype and device; `options` keeps the shape), as the Python face replaces it.
nn::ConvertSummary quantize_(torch::nn::Module& model, const QuantizeConfig& config, const QuantizeOptions& options = {});

// The same with a shorthand ("int4wo", "int8dq", "float8dq_e4m3_row", ...), parsed by
// parse_quantize_config; an unknown name is an error listing the valid ones.
nn::ConvertSummary quantize_(torch::nn::Module& model, const std::string& shorthand, const QuantizeOptions& options = {});

}  // namespace lowbit::inference
