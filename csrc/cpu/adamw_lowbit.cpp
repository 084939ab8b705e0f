// CPU kernel of lowbit::adamw_lowbit_step_: parses the call, increments the step counts, and
// steps each parameter with the vectorized kernel of the current kernel set (csrc/cpu/vec/
// adamw_lowbit.cpp, built per instruction set, chosen by csrc/cpu/vec_dispatch.cpp) — equal bit
// for bit to the scalar reference (adamw_lowbit_reference.cpp), which tests run beside it.
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include <lowbit/cpu/adamw_lowbit.h>
#include <lowbit/cpu/adamw_lowbit_tables.h>
#include <lowbit/cpu/map_lookup.h>
#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/adamw_lowbit_checks.h>

namespace lowbit::cpu::adamw {
namespace {

void adamw_lowbit_step_op(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                          at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                          at::TensorList steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                          c10::string_view state_format, int64_t block_size, bool bf16_stochastic_round) {
  adamw_lowbit_step(params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale, steps, lr, beta1, beta2, eps,
                    weight_decay, state_format, block_size, bf16_stochastic_round);
}

Search16 search_of(const MapThresholds16& th) {
  Search16 s{};
  for (int k = 0; k < 16; ++k) s.all[k] = th.t[k];
  for (int i = 0; i < 8; ++i) {
    s.step1[i] = th.t[std::min(8 * i + 4, 15)];
    s.step2[i] = th.t[std::min(4 * i + 2, 15)];
    s.step3[i] = th.t[2 * i + 1];
  }
  return s;
}

LookupView view_of(const MapLookup& lk) {
  return {reinterpret_cast<const int32_t*>(lk.entries.data()), lk.shift, lk.collapse, lk.key_min, lk.zero_index};
}

}  // namespace

const KernelTables& kernel_tables() {
  static const MapLookup l8m = make_map_lookup(core::dynamic_tree_map(8, true));
  static const MapLookup l8v = make_map_lookup(core::dynamic_tree_map(8, false));
  static const std::vector<float> e4m3 = [] {
    std::vector<float> t(256);
    for (int b = 0; b < 256; ++b)
      t[b] = static_cast<float>(c10::Float8_e4m3fn(static_cast<uint8_t>(b), c10::Float8_e4m3fn::from_bits()));
    return t;
  }();
  static const BytePlanes256 p8m = byte_planes(core::dynamic_tree_map(8, true).values);
  static const BytePlanes256 p8v = byte_planes(core::dynamic_tree_map(8, false).values);
  static const KernelTables tables{&core::dynamic_tree_map(8, true),
                                   &core::dynamic_tree_map(8, false),
                                   &core::dynamic_tree_map(4, true),
                                   &core::linear_map_without_zero_4bit(),
                                   &p8m,
                                   &p8v,
                                   view_of(l8m),
                                   view_of(l8v),
                                   search_of(make_map_thresholds16(core::dynamic_tree_map(4, true))),
                                   search_of(make_map_thresholds16(core::linear_map_without_zero_4bit())),
                                   e4m3.data()};
  return tables;
}

void adamw_lowbit_step(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                       at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                       at::TensorList steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                       c10::string_view state_format, int64_t block_size, bool bf16_stochastic_round) {
  const ops::AdamWStepArgs args =
      ops::parse_adamw_lowbit_step_args(params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale, steps,
                                        lr, beta1, beta2, eps, weight_decay, state_format, block_size);
  const vec::Kernels* kernels = vec::kernels();
  const auto step_fn = kernels != nullptr ? kernels->adamw_lowbit_step : &step_reference;
  for (size_t i = 0; i < params.size(); ++i) {
    float* step = steps[i].data_ptr<float>();
    *step += 1.0f;
    const at::Tensor grad = grads[i].contiguous();
    ParamSlot t{};
    t.param = params[i].data_ptr();
    t.grad = grad.const_data_ptr();
    t.m = exp_avg[i].data_ptr();
    t.m_scale = exp_avg_scale[i].data_ptr<float>();
    t.v = exp_avg_sq[i].data_ptr();
    t.v_scale = exp_avg_sq_scale[i].data_ptr<float>();
    t.numel = params[i].numel();
    t.layout = args.layouts[i];
    if (t.layout == core::StateLayout::k4bitRank1) {
      const core::MatrixShape ms = core::rank1_matrix_shape(params[i].size(0), t.numel);
      t.rows = ms.rows;
      t.cols = ms.cols;
    }
    t.index = static_cast<int64_t>(i);
    t.step = static_cast<int64_t>(*step);
    t.is_bf16 = params[i].scalar_type() == at::kBFloat16;
    t.coefs = core::adamw_coefs(args.hyper, t.step);
    if (t.numel > 0) step_fn(t, block_size, bf16_stochastic_round);
  }
}

}  // namespace lowbit::cpu::adamw

namespace lowbit::cpu {
TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("adamw_lowbit_step_", &adamw::adamw_lowbit_step_op); }
}  // namespace lowbit::cpu
