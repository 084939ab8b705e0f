// QuantFormat's defaults, shared by the formats that do not override them.
#include <lowbit/quant/format.h>

#include <ATen/ops/cat.h>
#include <ATen/ops/eye.h>

#include <algorithm>

namespace lowbit::quant {

at::Tensor QuantFormat::scale(at::TensorList parts) const {
  const auto names = part_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "scale") return parts.at(i);
  }
  TORCH_CHECK(false, name(), ": the format has no part named 'scale'");
}

std::optional<at::Tensor> QuantFormat::zero_point(at::TensorList parts) const {
  const auto names = part_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "zero_point") return parts.at(i);
  }
  return std::nullopt;
}

at::Tensor QuantFormat::dequantize(at::TensorList parts, int64_t n, int64_t k, at::ScalarType dtype) const {
  // Rows of the identity through the very op the forward uses: I @ dequant(W)^T = dequant(W)^T.
  // Chunks of 256 rows bound the work to a (256, k) x (k, n) product per chunk.
  constexpr int64_t kChunk = 256;
  const auto options = parts.at(0).options().dtype(dtype);
  std::vector<at::Tensor> columns;
  for (int64_t start = 0; start < k; start += kChunk) {
    const int64_t rows = std::min(kChunk, k - start);
    const at::Tensor eye = at::eye(k, options).narrow(0, start, rows);
    columns.push_back(linear(eye, parts, std::nullopt));  // (rows, n): columns start..start+rows of W
  }
  return at::cat(columns, 0).t().contiguous();
}

std::vector<at::Tensor> QuantFormat::convert_parts(at::TensorList parts, at::ScalarType dtype,
                                                   c10::Device device) const {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : parts) out.push_back(p.to(device));
  return out;
}

}  // namespace lowbit::quant
