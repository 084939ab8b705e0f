// Float8LinearConfig: how convert_to_float8_training makes a linear train in float8.
#pragma once

#include <string>

#include <lowbit/core/float8_linear.h>

namespace lowbit::float8 {

// The recipe and the differentiable float8 linear are core numerics (csrc/core/float8_linear.h);
// the float8 feature re-exports them under its own namespace.
using core::Float8Recipe;
using core::float8_linear;
using core::float8_recipe_name;
using core::parse_float8_recipe;

struct Float8LinearConfig {
  Float8Recipe recipe = Float8Recipe::Tensorwise;
  // fp8 rounding with float32 GEMMs: for CPUs and GPUs without fp8 tensor cores.
  bool emulate = false;
  // Also convert linears whose dims are not multiples of 16 (the GEMM pads them); by default
  // the convert filter leaves those in high precision.
  bool pad_inner_dim = false;
  // Tensorwise: cast the weight to fp8 again in backward instead of keeping its fp8 copy.
  bool force_recompute_fp8_weight_in_bwd = false;
  // FSDP: all-gather weights as fp8 bytes plus one scale (tensorwise only; Python FSDP2 and
  // lowbit::distributed::fully_shard). Without FSDP the layer computes exactly as without it.
  bool enable_fsdp_float8_all_gather = false;
  // Power-of-2 scales (exact scaling; the rowwise recipes default to it, as torchao does).
  bool round_scales_to_power_of_2 = false;

  // The named recipe's defaults: "tensorwise", "rowwise" or "rowwise_with_gw_hp".
  static Float8LinearConfig from_recipe_name(const std::string& name);
  // Throws if the options contradict each other.
  void validate() const;
  std::string to_string() const;
};

}  // namespace lowbit::float8
