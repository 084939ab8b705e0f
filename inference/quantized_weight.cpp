#include <lowbit/inference/quantized_weight.h>

#include <ATen/ops/amax.h>
#include <ATen/ops/eye.h>
#include <ATen/ops/full.h>
#include <ATen/ops/stack.h>

#include <limits>

#include <lowbit/core/affine.h>
#include <lowbit/core/bit_packing.h>
#include <lowbit/core/float8_cast.h>
#include <lowbit/core/fpx.h>
#include <lowbit/core/quantized_linear.h>

namespace lowbit::inference {
namespace {

// Largest tinygemm inner_k_tiles whose tile (inner_k_tiles * 16) divides K; 0 if none does.
int64_t tinygemm_inner_k_tiles(int64_t k) {
  for (int64_t t : {8, 4, 2}) {
    if (k % (t * 16) == 0) return t;
  }
  return 0;
}

int64_t packed_bits(const QuantizeConfig& c) {
  switch (c.kind) {
    case QuantKind::Int8DynamicInt4: return 4;
    case QuantKind::UIntxWeightOnly: return c.bits;
    case QuantKind::FpxWeightOnly: return 1 + c.ebits + c.mbits;
    default: return 0;
  }
}

// codes (N, K) uint8 -> row-packed (N, K * bits / 8); rows stay byte-aligned because K * bits % 8 == 0.
at::Tensor pack_rows(const at::Tensor& codes, int64_t bits) {
  return core::pack_uintx(codes.contiguous(), bits).reshape({codes.size(0), codes.size(1) * bits / 8});
}

size_t expected_parts(QuantKind kind) {
  return kind == QuantKind::Int8DynamicInt4 || kind == QuantKind::UIntxWeightOnly ? 3 : 2;
}

}  // namespace

std::string QuantizedWeight::qdtype() const {
  switch (config.kind) {
    case QuantKind::Int4WeightOnly: return "uint4";
    case QuantKind::Int8WeightOnly:
    case QuantKind::Int8DynamicInt8: return "int8";
    case QuantKind::Int8DynamicInt4: return "int4";
    case QuantKind::Float8WeightOnly: return config.float8_dtype == at::kFloat8_e5m2 ? "float8_e5m2" : "float8_e4m3fn";
    case QuantKind::Float8DynamicFloat8: return "float8_e4m3fn";
    case QuantKind::FpxWeightOnly: return config.name();
    case QuantKind::UIntxWeightOnly: return "uint" + std::to_string(config.bits);
  }
  return "?";
}

std::vector<int64_t> QuantizedWeight::block_size() const {
  switch (config.kind) {
    case QuantKind::Int4WeightOnly:
    case QuantKind::Int8DynamicInt4:
    case QuantKind::UIntxWeightOnly: return {1, config.group_size};
    case QuantKind::Float8DynamicFloat8:
      if (config.granularity == "tensor") return {out_features, in_features};
      return {1, in_features};
    default: return {1, in_features};
  }
}

std::string QuantizedWeight::layout() const {
  if (config.kind == QuantKind::Int4WeightOnly) return "tinygemm_int4";
  return packed_bits(config) != 0 ? "bitpacked" : "plain";
}

std::string QuantizedWeight::zero_point_domain() const {
  if (config.kind == QuantKind::Int4WeightOnly) return "float";
  return parts.size() == 3 ? "int" : "none";
}

std::optional<at::Tensor> QuantizedWeight::zero_point() const {
  if (config.kind == QuantKind::Int4WeightOnly) return parts.at(1).select(2, 1);  // zeros beside the scales
  if (parts.size() == 3) return parts[2];
  return std::nullopt;
}

int64_t QuantizedWeight::nbytes() const {
  int64_t n = 0;
  for (const auto& p : parts) n += p.numel() * static_cast<int64_t>(p.element_size());
  return n;
}

std::optional<std::string> unsupported_reason(const QuantizeConfig& config, int64_t out_features, int64_t in_features,
                                              at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    return std::string("weight dtype ") + c10::toString(dtype) + " is not float32 / bfloat16 / float16";
  }
  const std::string shape = "(out_features, in_features) = (" + std::to_string(out_features) + ", " +
                            std::to_string(in_features) + ")";
  switch (config.kind) {
    case QuantKind::Int4WeightOnly:
      if (out_features % 8 != 0 || in_features % config.group_size != 0 || tinygemm_inner_k_tiles(in_features) == 0)
        return shape + " does not fit tinygemm (needs out_features % 8 == 0, in_features % 32 == 0 and % group_size "
                       "== 0)";
      break;
    case QuantKind::Int8DynamicInt4:
    case QuantKind::UIntxWeightOnly:
      if (in_features % config.group_size != 0 || in_features % 8 != 0)
        return shape + ": in_features must be a multiple of group_size " + std::to_string(config.group_size) +
               " and of 8";
      break;
    case QuantKind::FpxWeightOnly:
      if (in_features % 8 != 0) return shape + ": in_features must be a multiple of 8 (byte-aligned packed rows)";
      break;
    default: break;
  }
  return std::nullopt;
}

QuantizedWeight quantize_weight(const at::Tensor& weight, const QuantizeConfig& config) {
  config.validate();
  TORCH_CHECK(weight.dim() == 2, "quantize_weight: weight must be 2-D (out_features, in_features), got shape ",
              weight.sizes());
  const int64_t n = weight.size(0), k = weight.size(1);
  if (auto reason = unsupported_reason(config, n, k, weight.scalar_type())) {
    TORCH_CHECK(false, "quantize_weight: ", config.to_string(), " cannot quantize this weight: ", *reason);
  }
  QuantizedWeight q;
  q.config = config;
  q.out_features = n;
  q.in_features = k;
  q.dtype = weight.scalar_type();
  const at::Tensor w = weight.detach().to(at::kFloat).contiguous();
  const int64_t g = config.group_size;
  switch (config.kind) {
    case QuantKind::Int4WeightOnly: {
      auto [scale, zp] = core::choose_qparams_affine(w, {1, g}, "uint4", "asymmetric", "float");
      const at::Tensor codes = core::quantize_affine(w, {1, g}, scale, zp, "uint4", "float");
      // tinygemm computes in bfloat16 on CUDA; on CPUs it takes the weight's own dtype.
      const at::ScalarType sz_dtype = weight.is_cuda() ? at::kBFloat16 : weight.scalar_type();
      const at::Tensor sz = at::stack({scale, zp}, -1).transpose(0, 1).contiguous().to(sz_dtype);
      q.parts = {core::int4_pack_tinygemm(codes, tinygemm_inner_k_tiles(k)), sz};
      break;
    }
    case QuantKind::Int8WeightOnly:
    case QuantKind::Int8DynamicInt8: {
      auto [scale, zp] = core::choose_qparams_affine(w, {1, k}, "int8", "symmetric");
      q.parts = {core::quantize_affine(w, {1, k}, scale, zp, "int8"), scale.reshape({n})};
      break;
    }
    case QuantKind::Int8DynamicInt4: {
      // Symmetric int4 stored as uint4 with zero point 8: the same codes shifted, so it packs as uint4.
      auto [scale, zp] = core::choose_qparams_affine(w, {1, g}, "uint4", "symmetric");
      q.parts = {pack_rows(core::quantize_affine(w, {1, g}, scale, zp, "uint4"), 4), scale, zp};
      break;
    }
    case QuantKind::UIntxWeightOnly: {
      const std::string qd = "uint" + std::to_string(config.bits);
      auto [scale, zp] = core::choose_qparams_affine(w, {1, g}, qd, "asymmetric", "int");
      q.parts = {pack_rows(core::quantize_affine(w, {1, g}, scale, zp, qd), config.bits), scale, zp};
      break;
    }
    case QuantKind::FpxWeightOnly: {
      // One scale per row maps the row's amax onto the format's largest finite value.
      const at::Tensor max_code =
          at::full({1}, (1 << (config.ebits + config.mbits)) - 1, w.options().dtype(at::kByte));
      const double fpx_max = core::fpx_decode(max_code, config.ebits, config.mbits).item<double>();
      const at::Tensor scale = at::amax(w.abs(), {1}).div_(fpx_max).clamp_min_(std::numeric_limits<float>::min());
      const at::Tensor codes = core::fpx_encode(w.div(scale.unsqueeze(1)), config.ebits, config.mbits);
      q.parts = {pack_rows(codes, packed_bits(config)), scale};
      break;
    }
    case QuantKind::Float8WeightOnly: {
      auto [data, scale] = core::cast_to_float8(w, config.float8_dtype, "row");
      q.parts = {data, scale};
      break;
    }
    case QuantKind::Float8DynamicFloat8: {
      auto [data, scale] = core::cast_to_float8(w, at::kFloat8_e4m3fn, config.granularity);
      q.parts = {data, scale};
      break;
    }
  }
  return q;
}

QuantizedWeight quantized_weight_from_parts(const QuantizeConfig& config, std::vector<at::Tensor> parts,
                                            int64_t out_features, int64_t in_features, at::ScalarType dtype) {
  config.validate();
  TORCH_CHECK(parts.size() == expected_parts(config.kind), "quantized weight ", config.name(), ": expected ",
              expected_parts(config.kind), " parts, got ", parts.size());
  QuantizedWeight q;
  q.config = config;
  q.parts = std::move(parts);
  q.out_features = out_features;
  q.in_features = in_features;
  q.dtype = dtype;
  // A shape check through the format's op on an empty batch: its checks name what is wrong.
  const at::Tensor probe = q.parts[0].new_empty({0, in_features}, q.parts[0].options().dtype(dtype));
  const at::Tensor y = quantized_linear(probe, q);
  TORCH_CHECK(y.size(-1) == out_features, "quantized weight ", config.name(), ": parts describe ", y.size(-1),
              " output features, expected ", out_features);
  return q;
}

at::Tensor quantized_linear(const at::Tensor& input, const QuantizedWeight& w, const std::optional<at::Tensor>& bias) {
  const auto& p = w.parts;
  const auto& c = w.config;
  // Checked here, not by p.at(i): that would leak "vector::_M_range_check" to the user.
  TORCH_CHECK(p.size() == expected_parts(c.kind), "quantized_linear: format ", c.name(), " takes ",
              expected_parts(c.kind), " parts, got ", p.size());
  switch (c.kind) {
    case QuantKind::Int4WeightOnly: return core::int4_weight_only_linear(input, p.at(0), p.at(1), c.group_size, bias);
    case QuantKind::Int8WeightOnly: return core::int8_weight_only_linear(input, p.at(0), p.at(1), bias);
    case QuantKind::Int8DynamicInt8: return core::int8_dynamic_activation_int8_linear(input, p.at(0), p.at(1), bias);
    case QuantKind::Int8DynamicInt4:
      return core::int8_dynamic_activation_int4_linear(input, p.at(0), p.at(1), p.at(2), c.group_size, bias);
    case QuantKind::UIntxWeightOnly:
      return core::uintx_weight_only_linear(input, p.at(0), p.at(1), p.at(2), c.bits, c.group_size, bias);
    case QuantKind::FpxWeightOnly: return core::fpx_weight_only_linear(input, p.at(0), p.at(1), c.ebits, c.mbits, bias);
    case QuantKind::Float8WeightOnly: return core::float8_weight_only_linear(input, p.at(0), p.at(1), bias);
    case QuantKind::Float8DynamicFloat8:
      return core::float8_dynamic_activation_linear(input, p.at(0), p.at(1), c.granularity, bias);
  }
  TORCH_CHECK(false, "quantized_linear: unknown format");
}

at::Tensor dequantize_weight(const QuantizedWeight& w) {
  // x = I (K x K) gives I @ dequant(W)^T = dequant(W)^T, through the very op the forward uses.
  // Exact except for the dynamic-activation formats, whose activation quantization of I is
  // lossless anyway (rows of I are one-hot).
  const at::Tensor eye = at::eye(w.in_features, w.parts.at(0).options().dtype(at::kFloat)).to(w.dtype);
  return quantized_linear(eye, w).t().contiguous();
}

std::string weight_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: TORCH_CHECK(false, "quantized weights of dtype ", dtype, " are not supported; allowed: float32, bfloat16, float16");
  }
}

at::ScalarType weight_dtype_from_name(const std::string& name, const std::string& where) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  TORCH_CHECK(false, where, ": unknown dtype '", name, "'; allowed: float32, bfloat16, float16");
}

}  // namespace lowbit::inference
