// Argument-check helpers shared by the core ops: dtypes named as Python users write them
// (torch.float32, not c10's "Float"), and the dtype checks that name the argument and the allowed
// values.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <string>

namespace lowbit::ops {

inline std::string torch_dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kFloat8_e4m3fn: return "torch.float8_e4m3fn";
    case at::kFloat8_e5m2: return "torch.float8_e5m2";
    case at::kChar: return "torch.int8";
    case at::kByte: return "torch.uint8";
    case at::kShort: return "torch.int16";
    case at::kInt: return "torch.int32";
    case at::kLong: return "torch.int64";
    case at::kBool: return "torch.bool";
    default: return std::string("torch.") + c10::toString(t);
  }
}

inline std::string torch_dtype_names(std::initializer_list<at::ScalarType> ts) {
  std::string out;
  for (at::ScalarType t : ts) out += (out.empty() ? "" : ", ") + torch_dtype_name(t);
  return out;
}

// `op: <what> torch.int32 is not supported; allowed: torch.float32, ...` unless t is allowed.
inline void check_dtype(at::ScalarType t, std::initializer_list<at::ScalarType> allowed, const char* op,
                        const char* what) {
  for (at::ScalarType a : allowed) {
    if (t == a) return;
  }
  TORCH_CHECK(false, op, ": ", what, " ", torch_dtype_name(t), " is not supported; allowed: ",
              torch_dtype_names(allowed));
}

constexpr std::initializer_list<at::ScalarType> kFloatDtypes = {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble};
constexpr std::initializer_list<at::ScalarType> kFloat32BF16F16 = {at::kFloat, at::kBFloat16, at::kHalf};

}  // namespace lowbit::ops
