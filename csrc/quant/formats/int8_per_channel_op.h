// The kernels around an int8 per-channel linear op `kOp(input, qdata, scale, bias?)` that int8wo
// and int8dq register alike (their ops differ only in what the CPU / CUDA kernels compute): the
// typed dispatcher call, the Meta kernel (the weight's checks, the output's shape) and the
// straight-through Autograd kernel, whose backward rebuilds the weight as format `kFormat`.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>

#include <optional>
#include <string>

namespace lowbit::quant {

template <const char* kOp, const char* kFormat>
struct Int8PerChannelOp {
  using OptTensor = std::optional<at::Tensor>;

  static at::Tensor call(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale,
                         const OptTensor& bias) {
    static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                             const OptTensor&)>((std::string("lowbit::") + kOp).c_str());
    return op.call(input, qdata, scale, bias);
  }

  static at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale,
                         const OptTensor& bias) {
    return ops::qlinear_meta_output(input, ops::check_int8_weight(qdata, scale, kOp), bias, kOp);
  }

  static at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale,
                             const OptTensor& bias) {
    return ops::quantized_linear_autograd(
        kOp, input, bias, {qdata, scale}, qdata.size(0), [&] { return call(input, qdata, scale, bias); },
        [] { return std::string(kFormat); });
  }
};

}  // namespace lowbit::quant
