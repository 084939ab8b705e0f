// safetensors files (https://github.com/huggingface/safetensors) from C++: a reader and a
// writer for named tensors plus string metadata, byte-compatible with the `safetensors`
// Python package (which the Python tests use to cross-check this code).
//
// Format: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON (padded with spaces),
// then the data buffer. The JSON maps each tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets into the buffer,
// row-major little-endian data) and the optional key "__metadata__" to a string -> string map.
// Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2.
//
// The reader validates everything before it allocates a tensor: a truncated file, a header that
// is not the JSON above, an unknown dtype, a shape whose size disagrees with its offsets,
// overlapping tensors, gaps or trailing bytes in the buffer each give a clear error.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace lowbit::io {

// Tensors by name plus the "__metadata__" strings of one safetensors file.
struct SafetensorsContents {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Writes `tensors` (any device, any strides; copied to contiguous CPU memory) and `metadata` to
// `path`, replacing the file. Tensors appear in name order.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a safetensors file into CPU tensors (each owns its memory).
SafetensorsContents load_safetensors(const std::string& path);

// The same two, to and from bytes in memory.
std::string serialize_safetensors(const std::map<std::string, at::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
SafetensorsContents deserialize_safetensors(const std::string& bytes, const std::string& source = "<bytes>");

// The safetensors name of a dtype ("F32", "BF16", ...); an error for unsupported dtypes.
std::string safetensors_dtype_name(at::ScalarType dtype);

}  // namespace lowbit::io
