// The quantized checkpoint file, one reader and one writer for both faces (Python reaches them
// through the lowbit::read_quantized_file / write_quantized_file ops). A safetensors file
// (lowbit::io) holding:
//   plain tensors        under their own names;
//   a quantized weight   `<name>` as its named parts `<name>.<part>` (e.g. `fc1.weight.qdata`,
//                        `fc1.weight.scale`), described in the metadata under
//                        `lowbit.quantized.<name>` by
//                        {"format": "int4wo-128", "shape": [N, K], "dtype": "bfloat16",
//                         "parts": ["qdata", "scale_and_zero"]};
//   `lowbit.format_version` = "2".
// Version 1 files (parts `<name>.part0..2`, "parts": <count>) are still read.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include <lowbit/quant/quantized_weight.h>

namespace lowbit::quant {

// The contents of a quantized checkpoint: plain tensors and quantized weights by name.
struct QuantizedFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, QuantizedWeight> weights;
};

// Reads and checks a file (each weight's parts against its format and shape); a c10::Error that
// names the file and the problem otherwise. Tensors are on the CPU.
QuantizedFile read_quantized_file(const std::string& path);
// Writes `file` (tensors copied to CPU). A path that is a directory, or a name that is both a
// plain and a quantized tensor, is an error before anything is written; the file is replaced
// atomically (a temporary beside it, renamed; removed if writing fails).
void write_quantized_file(const std::string& path, const QuantizedFile& file);

// The file's contents as the ops carry them: every quantized weight's parts (in manifest order),
// then the plain tensors, and a JSON manifest
//   {"quantized": [{"name", "format", "shape", "dtype", "parts": [part names]}, ...],
//    "plain": [names]}
std::pair<std::vector<at::Tensor>, std::string> to_manifest(const QuantizedFile& file);
// The inverse (checks every weight's parts against its format); `where` prefixes errors.
QuantizedFile from_manifest(const std::vector<at::Tensor>& tensors, const std::string& manifest,
                            const std::string& where);

}  // namespace lowbit::quant
