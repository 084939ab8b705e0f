// save_quantized / load_quantized: a model's tensors and packed weights as one quantized
// checkpoint file (csrc/quant/file.h: the layout and its one reader and writer, which the Python
// face uses too).
#pragma once

#include <torch/nn/module.h>

#include <string>

#include <lowbit/inference/quantized_weight.h>
#include <lowbit/quant/file.h>

namespace lowbit::inference {

using quant::QuantizedFile;
using quant::read_quantized_file;
using quant::write_quantized_file;

// Writes the model's parameters and buffers; layers with a QuantizedLinearMethod contribute their
// packed parts instead of their float weight. A weight shared by several modules is written once.
void save_quantized(torch::nn::Module& model, const std::string& path);

// Reads a save_quantized file (either face) into `model` (same module names): plain tensors
// replace the parameters' data, quantized weights install a QuantizedLinearMethod on their
// lowbit::nn::Linear. A truncated, mismatched or hostile file is a c10::Error and leaves the model
// untouched: everything is read and checked before anything changes.
void load_quantized(torch::nn::Module& model, const std::string& path);

}  // namespace lowbit::inference
