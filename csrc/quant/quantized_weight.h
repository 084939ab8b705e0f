// QuantizedWeight: the one description of a quantized linear weight, shared by quantize_ (the C++
// linear method and the Python tensor subclass hold exactly these parts), QAT's convert,
// autoquant and save_quantized / load_quantized.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include <lowbit/quant/config.h>

namespace lowbit::quant {

struct QuantizedWeight {
  QuantizeConfig config;          // the format; config.name() is saved with the parts
  std::vector<at::Tensor> parts;  // in config.format().part_names() order
  int64_t out_features = 0;       // logical shape (out_features, in_features)
  int64_t in_features = 0;
  at::ScalarType dtype = at::kFloat;  // the weight's dtype before quantization (dequantize's output)

  // The description's fields, from the format:
  std::string qdtype() const;                // "uint4", "int8", "uint3", "float8_e4m3fn", "fp6_e3m2", ...
  std::vector<int64_t> block_size() const;   // (1, group), (1, K) per channel, (N, K) per tensor
  std::string layout() const;                // "tinygemm_int4", "plain", "bitpacked"
  std::string zero_point_domain() const;     // "int", "float" or "none"
  std::vector<std::string> part_names() const;
  // A part by name ("qdata", "scale", "zero_point", "scale_and_zero"); an error listing the names.
  const at::Tensor& part(const std::string& name) const;
  const at::Tensor& data() const { return parts.at(0); }
  at::Tensor scale() const;
  std::optional<at::Tensor> zero_point() const;  // none for symmetric and float formats
  // Bytes held by the parts.
  int64_t nbytes() const;
};

// Quantizes a float weight (N, K) on its own device; an error (naming the config and the reason)
// if the format cannot take it.
QuantizedWeight quantize_weight(const at::Tensor& weight, const QuantizeConfig& config);

// Rebuilds the description from saved parts: checks their number, and their dtypes and shapes
// through the format's op (the checks its Meta and CPU kernels share).
QuantizedWeight quantized_weight_from_parts(const QuantizeConfig& config, std::vector<at::Tensor> parts,
                                            int64_t out_features, int64_t in_features, at::ScalarType dtype);

// y = x @ dequant(W)^T + bias through the format's lowbit:: op.
at::Tensor quantized_linear(const at::Tensor& input, const QuantizedWeight& weight,
                            const std::optional<at::Tensor>& bias = std::nullopt);

// The weight as a dense (N, K) tensor of weight.dtype.
at::Tensor dequantize_weight(const QuantizedWeight& weight);

// The weight for a new logical dtype (float32 / bfloat16 / float16) on `device` (an error if its
// format cannot follow, e.g. int4's per-device packing across device types).
QuantizedWeight convert_quantized_weight(const QuantizedWeight& weight, at::ScalarType dtype, c10::Device device);

}  // namespace lowbit::quant
