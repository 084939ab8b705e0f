// QuantFormat: everything lowbit knows about one quantized weight format, in one place. A format
// file (csrc/quant/formats/<format>.cpp) defines a subclass, its linear op (schema, Meta kernel,
// autograd) and a FormatFamily that registers its config class and shorthands; its kernels live in
// csrc/cpu and csrc/cuda. Nothing else in lowbit switches on formats.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/quant/config.h>

namespace lowbit::quant {

class QuantFormat {
 public:
  virtual ~QuantFormat() = default;

  // ---- naming ---------------------------------------------------------------------------
  // The config class, e.g. "Int4WeightOnlyConfig".
  virtual std::string kind() const = 0;
  // The canonical shorthand, e.g. "int4wo-128" (computed once by the constructor).
  const std::string& name() const { return name_; }
  // Parameters in constructor order (what to_string prints and make_quantize_config takes).
  virtual std::vector<std::pair<std::string, QuantParam>> params() const = 0;

  // ---- the description of a quantized weight (ARCHITECTURE: qdtype, block_size, layout, ...) -
  // Names of the packed parts, in the order the linear op takes them, e.g. {"qdata", "scale"}.
  virtual std::vector<std::string> part_names() const = 0;
  virtual std::string qdtype() const = 0;                                  // "int8", "uint4", "fp6_e3m2", ...
  virtual std::vector<int64_t> block_size(int64_t n, int64_t k) const = 0;  // e.g. (1, group) or (1, K)
  virtual std::string layout() const = 0;                                  // "plain", "bitpacked", "tinygemm_int4"
  virtual std::string zero_point_domain() const = 0;                       // "int", "float" or "none"
  // The scale and zero point among the parts (views where the format stores them together).
  virtual at::Tensor scale(at::TensorList parts) const;
  virtual std::optional<at::Tensor> zero_point(at::TensorList parts) const;
  // True when activations are quantized on the fly (the gradient to the input is then a
  // straight-through estimate through that quantization too).
  virtual bool quantizes_activations() const { return false; }

  // ---- rules ------------------------------------------------------------------------------
  // Why this format cannot take an (n, k) weight (nullopt if it can); the dtype rule shared by
  // every format is checked before (quant::unsupported_reason).
  virtual std::optional<std::string> shape_reason(int64_t n, int64_t k) const { return std::nullopt; }

  // ---- numerics (through lowbit:: ops) -----------------------------------------------------
  // Quantizes a float (N, K) weight on its device; the parts in part_names() order. `weight` has
  // passed unsupported_reason; `w` is it as contiguous float32.
  virtual std::vector<at::Tensor> quantize(const at::Tensor& weight, const at::Tensor& w) const = 0;
  // y = x @ dequant(W)^T + bias through the format's own op (a typed call: no strings).
  virtual at::Tensor linear(const at::Tensor& input, at::TensorList parts,
                            const std::optional<at::Tensor>& bias) const = 0;
  // The weight as a dense (n, k) tensor of `dtype`. The default runs the linear op on identity
  // rows in chunks (exact for weight-only formats); formats override it with a direct path.
  virtual at::Tensor dequantize(at::TensorList parts, int64_t n, int64_t k, at::ScalarType dtype) const;
  // The parts for a layer whose logical dtype becomes `dtype` (float32 / bfloat16 / float16) and
  // that moves to `device`; an error if this format cannot follow (int4's packing is per device).
  virtual std::vector<at::Tensor> convert_parts(at::TensorList parts, at::ScalarType dtype, c10::Device device) const;

  // ---- the Python face calls the op directly: linear_op(input, *parts, *linear_op_args, bias) -
  virtual std::string linear_op() const = 0;              // e.g. "int4_weight_only_linear"
  virtual std::vector<QuantParam> linear_op_args() const = 0;  // e.g. {group_size}

 protected:
  // Subclasses set the canonical shorthand once, in their constructor.
  std::string name_;
};

// A config class as the bindings and make_quantize_config see it: its parameters (with
// defaults), a factory and its shorthands.
struct FormatFamily {
  struct Param {
    std::string name;
    std::optional<QuantParam> default_value;  // nullopt: required
  };
  int order = 0;      // position in the documentation (the shorthand list is sorted by it)
  std::string kind;   // "Int4WeightOnlyConfig"
  std::string doc;    // one line for help()
  std::vector<Param> params;
  // Builds a validated config from complete parameters (an error names the bad one).
  std::function<QuantizeConfig(const QuantParams&)> make;
  // (shorthand, config) pairs in documentation order.
  std::function<std::vector<std::pair<std::string, QuantizeConfig>>()> shorthands;
  // The config a canonical name describes when it is not in the shorthand list (e.g.
  // "uint3wo-48": any group size), or nullopt; may be empty.
  std::function<std::optional<QuantizeConfig>(const std::string&)> parse_name;
};

// Called once per format file at load time (static initializer); returns true.
bool register_format_family(FormatFamily family);
// Every registered family, in documentation order.
std::vector<const FormatFamily*> format_families();

// Helpers for format files: typed parameter access with an error naming the config.
int64_t param_int(const QuantParams& p, const std::string& kind, const std::string& name);
std::string param_string(const QuantParams& p, const std::string& kind, const std::string& name);
at::ScalarType param_dtype(const QuantParams& p, const std::string& kind, const std::string& name);

}  // namespace lowbit::quant
