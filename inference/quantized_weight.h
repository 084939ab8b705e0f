// QuantizedWeight: the one description of a quantized linear weight, shared by quantize_ (the
// C++ linear method and the Python tensor subclass hold exactly these parts), QAT's convert and
// save_quantized / load_quantized.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include <lowbit/inference/config.h>

namespace lowbit::inference {

struct QuantizedWeight {
  QuantizeConfig config;          // the format (see config.h); config.name() is saved with the parts
  std::vector<at::Tensor> parts;  // packed data first, then scale, then zero_point (where the format has one)
  int64_t out_features = 0;       // logical shape (out_features, in_features)
  int64_t in_features = 0;
  at::ScalarType dtype = at::kFloat;  // the weight's dtype before quantization (dequantize's output)

  // The description's fields, derived from the config:
  std::string qdtype() const;                // "uint4", "int8", "uint3", "float8_e4m3fn", "fp6_e3m2", ...
  std::vector<int64_t> block_size() const;   // (1, group), (1, K) per channel, (N, K) per tensor
  std::string layout() const;                // "tinygemm_int4", "plain", "bitpacked"
  std::string zero_point_domain() const;     // "int", "float" or "none"
  const at::Tensor& data() const { return parts.at(0); }
  const at::Tensor& scale() const { return parts.at(1); }
  std::optional<at::Tensor> zero_point() const;  // none for symmetric-without-zp and float formats
  // Bytes held by the parts.
  int64_t nbytes() const;
};

// "float32" / "bfloat16" / "float16": the weight dtypes quantize_ takes, as files name them.
std::string weight_dtype_name(at::ScalarType dtype);
// The inverse; an unknown name is an error naming `where` and the allowed names.
at::ScalarType weight_dtype_from_name(const std::string& name, const std::string& where);

// Why `config` cannot quantize a (out_features, in_features) weight of `dtype` (nullopt if it can).
std::optional<std::string> unsupported_reason(const QuantizeConfig& config, int64_t out_features, int64_t in_features,
                                              at::ScalarType dtype);

// Quantizes a float weight (N, K) on its own device with lowbit's affine / fpx / float8 ops.
QuantizedWeight quantize_weight(const at::Tensor& weight, const QuantizeConfig& config);

// Rebuilds the description from saved parts (checks their number, dtypes and shapes).
QuantizedWeight quantized_weight_from_parts(const QuantizeConfig& config, std::vector<at::Tensor> parts,
                                            int64_t out_features, int64_t in_features, at::ScalarType dtype);

// y = x @ dequant(W)^T + bias through the format's lowbit:: op.
at::Tensor quantized_linear(const at::Tensor& input, const QuantizedWeight& weight,
                            const std::optional<at::Tensor>& bias = std::nullopt);

// The weight as a dense (N, K) tensor of weight.dtype (for tests, QAT checks and debugging).
at::Tensor dequantize_weight(const QuantizedWeight& weight);

}  // namespace lowbit::inference
