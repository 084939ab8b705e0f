// save_quantized / load_quantized: a model's tensors and packed weights as one safetensors file
// (lowbit::io), the same layout the Python face writes (python/lowbit/inference/serialization.py):
// plain tensors under their names, a quantized weight `<name>` as `<name>.part0..2` plus the
// metadata entry `lowbit.quantized.<name>` = {"format": "int4wo-128", "shape": [N, K],
// "dtype": "bfloat16", "parts": 2}, and `lowbit.format_version` = "1".
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>

#include <lowbit/inference/quantized_weight.h>

namespace lowbit::inference {

// The contents of a save_quantized file: plain tensors and quantized weights by name.
struct QuantizedFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, QuantizedWeight> weights;
};

// Reads and checks a file (each weight's parts against its format and shape); c10::Error otherwise.
QuantizedFile read_quantized_file(const std::string& path);
// Writes `file` in the layout above (tensors copied to CPU).
void write_quantized_file(const std::string& path, const QuantizedFile& file);

// Writes the model's parameters and buffers; layers with a QuantizedLinearMethod contribute their
// packed parts instead of their float weight.
void save_quantized(torch::nn::Module& model, const std::string& path);

// Reads a save_quantized file (either face) into `model` (same module names): plain tensors
// replace the parameters' data, quantized weights install a QuantizedLinearMethod on their
// lowbit::nn::Linear. A truncated, mismatched or hostile file is a c10::Error and leaves the model
// untouched: everything is read and checked before anything changes.
void load_quantized(torch::nn::Module& model, const std::string& path);

}  // namespace lowbit::inference
