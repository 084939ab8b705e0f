// CUDA kernel of lowbit::adamw_lowbit_step_: one multi-tensor launch per parameter group.
//
// The host packs one Slot per parameter (pointers, sizes, layout) into a pinned buffer that is
// copied to the device without a sync; the grid has one CUDA block per quantization block of
// every parameter, and a block finds its parameter by binary search over the slots' first
// block. Each block loads the quantization maps into shared memory, reads its codes and old
// scales, dequantizes, applies the AdamW update in registers (core/adamw_math.h), writes the
// parameter, reduces the new absmax over the block and requantizes, all in one pass over memory.
// The step counts stay on the device: they are incremented by one _foreach_add_ and each block
// reads its parameter's step to form the bias corrections. No host synchronization.
//
// Launches per group: _foreach_add_ on the steps, the metadata copy, the update kernel; with
// rank-1 (4-bit) second moments also a zero fill, a statistics kernel before the update (the
// new row / column maxima must be known before any element is requantized) and a copy of the
// new statistics into the state after it.
//
// Every element operation is the same LOWBIT_HD function as in the CPU reference, with products
// rounded on their own (mul_rn), so the result equals the CPU reference bit for bit.
#include <ATen/core/Tensor.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include <lowbit/core/adamw_math.h>
#include <lowbit/core/bf16_rounding.h>
#include <lowbit/core/optimizer_state_formats.h>
#include <lowbit/ops/adamw_lowbit_checks.h>

#include "launch.cuh"
#include "reduce.cuh"

namespace lowbit::cuda {
namespace {

using core::StateLayout;

constexpr int kMaxPairsPerThread = 8;  // block_size <= 4096 = 2 * 256 threads * 8 pairs
constexpr int kStatsRows = 32;         // rows per tile of the rank-1 statistics kernel
constexpr int kStatsCols = 256;        // columns per tile (one per thread)

// One parameter of the call, as the kernels see it.
struct Slot {
  void* param;
  const void* grad;
  void* m;
  float* m_scale;
  void* v;
  float* v_scale;
  const float* step;
  float* new_stats;  // rank-1 only: new row maxima then column maxima (zero-filled)
  int64_t numel, rows, cols;
  int64_t first_block;  // prefix sum of quantization blocks over the slots
  int64_t first_tile;   // prefix sum of statistics tiles (rank-1 slots only)
  int32_t layout, is_bf16, index;
};

struct Args {
  const Slot* slots;
  int num_slots;
  int64_t block_size;
  bool stochastic_round;
  core::AdamWHyper hyper;
  core::QuantMap map_m, map_v;  // by value: kernel parameters live in constant memory
};

// The last slot whose prefix `first` is <= x (slots with nothing to do share their successor's
// prefix and are skipped by taking the last match).
template <int64_t Slot::*first>
__device__ __forceinline__ int find_slot(const Slot* slots, int n, int64_t x) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (slots[mid].*first <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <typename P>
__device__ __forceinline__ void store_param(P* p, int64_t e, float value, const Slot& s, int64_t step, bool sr) {
  if constexpr (std::is_same_v<P, float>) {
    p[e] = value;
  } else {
    p[e] = sr ? core::bf16_round_stochastic(value, core::stochastic_rounding_bits(step, s.index, e))
              : core::bf16_round_nearest_even(value);
  }
}

__device__ __forceinline__ float rank1_scale_at(const float* stats, int64_t rows, int64_t cols, int64_t e) {
  return core::rank1_scale(stats[e / cols], stats[rows + e % cols]);
}

// Old m and v of element e.
template <StateLayout L>
__device__ __forceinline__ void decode_element(const Slot& s, int64_t e, float m_scale, float v_scale,
                                               const float* map_m, const float* map_v, float& m, float& v) {
  if constexpr (L == StateLayout::kFloat32) {
    m = static_cast<const float*>(s.m)[e];
    v = static_cast<const float*>(s.v)[e];
  } else if constexpr (L == StateLayout::kDynamicTree8) {
    m = core::decode_with_map(map_m, static_cast<const uint8_t*>(s.m)[e], m_scale);
    v = core::decode_with_map(map_v, static_cast<const uint8_t*>(s.v)[e], v_scale);
  } else if constexpr (L == StateLayout::kFp8) {
    m = core::decode_fp8_state(static_cast<const c10::Float8_e4m3fn*>(s.m)[e], m_scale);
    v = core::decode_fp8_state(static_cast<const c10::Float8_e4m3fn*>(s.v)[e], v_scale);
  } else {
    const uint8_t mb = static_cast<const uint8_t*>(s.m)[e / 2], vb = static_cast<const uint8_t*>(s.v)[e / 2];
    m = core::decode_with_map(map_m, core::nibble(mb, e), m_scale);
    const float vs = L == StateLayout::k4bitRank1 ? rank1_scale_at(s.v_scale, s.rows, s.cols, e) : v_scale;
    v = core::decode_with_map(map_v, core::nibble(vb, e), vs);
  }
}

// One quantization block of one parameter; thread t owns element pairs t, t + T, ... .
template <StateLayout L, typename P>
__device__ void update_block(const Slot& s, int64_t block, const Args& a, const float* map_m, const float* map_v) {
  const int T = blockDim.x, tid = threadIdx.x;
  const int pairs = static_cast<int>(a.block_size / 2 / T);
  const int64_t begin = block * a.block_size;
  const int64_t step = static_cast<int64_t>(*s.step);
  const core::AdamWCoefs c = core::adamw_coefs(a.hyper, step);
  const bool quantized = L != StateLayout::kFloat32;
  const float m_scale = quantized ? s.m_scale[block] : 0.0f;
  const float v_scale = quantized && L != StateLayout::k4bitRank1 ? s.v_scale[block] : 0.0f;
  P* param = static_cast<P*>(s.param);
  const P* grad = static_cast<const P*>(s.grad);

  float m[2 * kMaxPairsPerThread], v[2 * kMaxPairsPerThread];
  float m_absmax = 0.0f, v_max = 0.0f;
#pragma unroll
  for (int k = 0; k < kMaxPairsPerThread; ++k) {
    if (k >= pairs) break;
    const int64_t e0 = begin + 2 * static_cast<int64_t>(tid + k * T);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t e = e0 + h;
      float mk = 0.0f, vk = 0.0f;
      if (e < s.numel) {
        decode_element<L>(s, e, m_scale, v_scale, map_m, map_v, mk, vk);
        const float g = static_cast<float>(grad[e]);
        mk = core::adamw_first_moment(mk, g, c);
        vk = core::adamw_second_moment(vk, g, c);
        store_param(param, e, core::adamw_param(static_cast<float>(param[e]), mk, vk, c), s, step, a.stochastic_round);
        if constexpr (L == StateLayout::kFloat32) {
          static_cast<float*>(s.m)[e] = mk;
          static_cast<float*>(s.v)[e] = vk;
        }
      }
      m[2 * k + h] = mk;
      v[2 * k + h] = vk;
      m_absmax = fmaxf(m_absmax, core::m_scale_part(mk, vk));  // elements with a finite new v only
      v_max = fmaxf(v_max, core::v_scale_part(vk));
    }
  }
  if constexpr (L == StateLayout::kFloat32) return;

  m_absmax = block_reduce(m_absmax, MaxOp(), 0.0f);
  if constexpr (L != StateLayout::k4bitRank1) v_max = block_reduce(v_max, MaxOp(), 0.0f);
  const float new_m_scale = L == StateLayout::kFp8 ? core::fp8_state_scale_from_absmax(m_absmax)
                                                   : core::map_scale_from_absmax(m_absmax);
  const float new_v_scale = L == StateLayout::kFp8 ? core::fp8_state_scale_from_absmax(v_max)
                                                   : core::map_scale_from_absmax(v_max);
#pragma unroll
  for (int k = 0; k < kMaxPairsPerThread; ++k) {
    if (k >= pairs) break;
    const int64_t e0 = begin + 2 * static_cast<int64_t>(tid + k * T);
    if (e0 >= s.numel) break;
    const bool has_second = e0 + 1 < s.numel;
    if constexpr (L == StateLayout::kDynamicTree8) {
      auto* mc = static_cast<uint8_t*>(s.m);
      auto* vc = static_cast<uint8_t*>(s.v);
      mc[e0] = core::encode_with_map(map_m, a.map_m.size, m[2 * k], new_m_scale);
      vc[e0] = core::encode_with_map(map_v, a.map_v.size, v[2 * k], new_v_scale);
      if (has_second) {
        mc[e0 + 1] = core::encode_with_map(map_m, a.map_m.size, m[2 * k + 1], new_m_scale);
        vc[e0 + 1] = core::encode_with_map(map_v, a.map_v.size, v[2 * k + 1], new_v_scale);
      }
    } else if constexpr (L == StateLayout::kFp8) {
      auto* mc = static_cast<c10::Float8_e4m3fn*>(s.m);
      auto* vc = static_cast<c10::Float8_e4m3fn*>(s.v);
      mc[e0] = core::encode_fp8_state(m[2 * k], new_m_scale);
      vc[e0] = core::encode_fp8_state(v[2 * k], new_v_scale);
      if (has_second) {
        mc[e0 + 1] = core::encode_fp8_state(m[2 * k + 1], new_m_scale);
        vc[e0 + 1] = core::encode_fp8_state(v[2 * k + 1], new_v_scale);
      }
    } else {  // 4-bit: one byte per pair
      uint8_t mcode[2] = {0, 0}, vcode[2] = {0, 0};
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (h == 1 && !has_second) break;
        const float vs = L == StateLayout::k4bitRank1 ? rank1_scale_at(s.new_stats, s.rows, s.cols, e0 + h)
                                                      : new_v_scale;
        mcode[h] = core::encode_with_map(map_m, a.map_m.size, m[2 * k + h], new_m_scale);
        vcode[h] = core::encode_with_map(map_v, a.map_v.size, v[2 * k + h], vs);
      }
      static_cast<uint8_t*>(s.m)[e0 / 2] = core::pack_nibbles(mcode[0], mcode[1]);
      static_cast<uint8_t*>(s.v)[e0 / 2] = core::pack_nibbles(vcode[0], vcode[1]);
    }
  }
  if (tid == 0) {
    s.m_scale[block] = new_m_scale;
    if constexpr (L != StateLayout::k4bitRank1) s.v_scale[block] = new_v_scale;
  }
}

template <typename P>
__device__ void update_block_for_layout(const Slot& s, int64_t block, const Args& a, const float* mm, const float* mv) {
  switch (static_cast<StateLayout>(s.layout)) {
    case StateLayout::kFloat32: update_block<StateLayout::kFloat32, P>(s, block, a, mm, mv); break;
    case StateLayout::kDynamicTree8: update_block<StateLayout::kDynamicTree8, P>(s, block, a, mm, mv); break;
    case StateLayout::kFp8: update_block<StateLayout::kFp8, P>(s, block, a, mm, mv); break;
    case StateLayout::k4bitBlockwise: update_block<StateLayout::k4bitBlockwise, P>(s, block, a, mm, mv); break;
    case StateLayout::k4bitRank1: update_block<StateLayout::k4bitRank1, P>(s, block, a, mm, mv); break;
  }
}

__global__ void adamw_lowbit_update_kernel(const Args a) {
  __shared__ float map_m[core::kMaxMapSize], map_v[core::kMaxMapSize];
  for (int i = threadIdx.x; i < a.map_m.size; i += blockDim.x) map_m[i] = a.map_m.values[i];
  for (int i = threadIdx.x; i < a.map_v.size; i += blockDim.x) map_v[i] = a.map_v.values[i];
  __syncthreads();
  const int64_t global_block = blockIdx.x;
  const Slot& s = a.slots[find_slot<&Slot::first_block>(a.slots, a.num_slots, global_block)];
  const int64_t block = global_block - s.first_block;
  if (s.is_bf16) update_block_for_layout<c10::BFloat16>(s, block, a, map_m, map_v);
  else update_block_for_layout<float>(s, block, a, map_m, map_v);
}

// New rank-1 statistics: a tile of kStatsRows rows x kStatsCols columns per block, one column
// per thread. Column maxima go straight to global atomics (one per tile column); row maxima are
// reduced per warp, then across warps in shared memory, then one global atomic per tile row.
template <typename P>
__device__ void rank1_stats_tile(const Slot& s, int64_t tile, const Args& a, const float* map_v) {
  __shared__ float row_max[kStatsRows];
  const int64_t col_tiles = (s.cols + kStatsCols - 1) / kStatsCols;
  const int64_t r0 = (tile / col_tiles) * kStatsRows;
  const int64_t j = (tile % col_tiles) * kStatsCols + threadIdx.x;
  const core::AdamWCoefs c = core::adamw_coefs(a.hyper, static_cast<int64_t>(*s.step));
  const P* grad = static_cast<const P*>(s.grad);
  const uint8_t* vc = static_cast<const uint8_t*>(s.v);
  if (threadIdx.x < kStatsRows) row_max[threadIdx.x] = 0.0f;
  __syncthreads();
  float col_max = 0.0f;
  for (int r = 0; r < kStatsRows; ++r) {
    const int64_t i = r0 + r;
    if (i >= s.rows) break;  // uniform over the block
    float nv = 0.0f;
    if (j < s.cols) {
      const int64_t e = i * s.cols + j;
      const float old = core::decode_with_map(map_v, core::nibble(vc[e / 2], e), rank1_scale_at(s.v_scale, s.rows, s.cols, e));
      nv = core::v_scale_part(core::adamw_second_moment(old, static_cast<float>(grad[e]), c));
    }
    col_max = fmaxf(col_max, nv);
    const float wmax = warp_reduce(nv, MaxOp());
    if (threadIdx.x % kWarpSize == 0) atomicMax(reinterpret_cast<int*>(&row_max[r]), __float_as_int(wmax));
  }
  if (j < s.cols) atomic_max_nonnegative(&s.new_stats[s.rows + j], col_max);
  __syncthreads();
  if (threadIdx.x < kStatsRows && r0 + threadIdx.x < s.rows)
    atomic_max_nonnegative(&s.new_stats[r0 + threadIdx.x], row_max[threadIdx.x]);
}

__global__ void adamw_lowbit_rank1_stats_kernel(const Args a) {
  __shared__ float map_v[core::kMaxMapSize];
  for (int i = threadIdx.x; i < a.map_v.size; i += blockDim.x) map_v[i] = a.map_v.values[i];
  __syncthreads();
  const Slot& s = a.slots[find_slot<&Slot::first_tile>(a.slots, a.num_slots, blockIdx.x)];
  const int64_t tile = blockIdx.x - s.first_tile;
  if (s.is_bf16) rank1_stats_tile<c10::BFloat16>(s, tile, a, map_v);
  else rank1_stats_tile<float>(s, tile, a, map_v);
}

// The new rank-1 statistics become the state's (after every block has decoded with the old).
__global__ void adamw_lowbit_rank1_commit_kernel(const Slot* slots) {
  const Slot& s = slots[blockIdx.x];
  if (static_cast<StateLayout>(s.layout) != StateLayout::k4bitRank1) return;
  for (int64_t k = threadIdx.x; k < s.rows + s.cols; k += blockDim.x) s.v_scale[k] = s.new_stats[k];
}

void adamw_lowbit_step_cuda(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                            at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                            at::TensorList steps, double lr, double beta1, double beta2, double eps,
                            double weight_decay, c10::string_view state_format, int64_t block_size,
                            bool bf16_stochastic_round) {
  const ops::AdamWStepArgs args =
      ops::parse_adamw_lowbit_step_args(params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale, steps, lr,
                                        beta1, beta2, eps, weight_decay, state_format, block_size);
  const core::StateFormat format = args.format;
  const std::vector<StateLayout>& layouts = args.layouts;
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  at::_foreach_add_(steps, 1);

  std::vector<at::Tensor> contiguous_grads;
  std::vector<Slot> slots(params.size());
  int64_t blocks = 0, tiles = 0, stats = 0;
  bool any_rank1 = false;
  for (size_t i = 0; i < params.size(); ++i) {
    Slot& s = slots[i];
    contiguous_grads.push_back(grads[i].contiguous());
    s.param = params[i].data_ptr();
    s.grad = contiguous_grads.back().const_data_ptr();
    s.m = exp_avg[i].data_ptr();
    s.m_scale = exp_avg_scale[i].data_ptr<float>();
    s.v = exp_avg_sq[i].data_ptr();
    s.v_scale = exp_avg_sq_scale[i].data_ptr<float>();
    s.step = steps[i].const_data_ptr<float>();
    s.numel = params[i].numel();
    s.layout = static_cast<int32_t>(layouts[i]);
    s.is_bf16 = params[i].scalar_type() == at::kBFloat16;
    s.index = static_cast<int32_t>(i);
    s.first_block = blocks;
    blocks += core::num_blocks(s.numel, block_size);
    s.first_tile = tiles;
    if (layouts[i] == StateLayout::k4bitRank1) {
      const core::MatrixShape ms = core::rank1_matrix_shape(params[i].size(0), s.numel);
      s.rows = ms.rows;
      s.cols = ms.cols;
      tiles += ((s.rows + kStatsRows - 1) / kStatsRows) * ((s.cols + kStatsCols - 1) / kStatsCols);
      s.new_stats = reinterpret_cast<float*>(stats);  // an offset until the workspace exists
      stats += s.rows + s.cols;
      any_rank1 = true;
    }
  }
  if (blocks == 0) return;
  const auto device = params[0].device();
  at::Tensor workspace;
  if (any_rank1) {
    workspace = at::zeros({stats}, at::TensorOptions().dtype(at::kFloat).device(device));
    for (size_t i = 0; i < slots.size(); ++i)
      if (layouts[i] == StateLayout::k4bitRank1)
        slots[i].new_stats = workspace.data_ptr<float>() + reinterpret_cast<intptr_t>(slots[i].new_stats);
  }
  // The slots travel through pinned memory; the caching host allocator keeps the buffer alive
  // until the copy on this stream has run.
  const int64_t bytes = static_cast<int64_t>(slots.size() * sizeof(Slot));
  at::Tensor host = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  std::memcpy(host.data_ptr(), slots.data(), bytes);
  const at::Tensor device_slots = host.to(at::TensorOptions().device(device), /*non_blocking=*/true);

  Args a{};
  a.slots = reinterpret_cast<const Slot*>(device_slots.const_data_ptr());
  a.num_slots = static_cast<int>(slots.size());
  a.block_size = block_size;
  a.stochastic_round = bf16_stochastic_round;
  a.hyper = args.hyper;
  if (format == core::StateFormat::k8bit) {
    a.map_m = core::dynamic_tree_map(8, true);
    a.map_v = core::dynamic_tree_map(8, false);
  } else if (format == core::StateFormat::k4bit) {
    a.map_m = core::dynamic_tree_map(4, true);
    a.map_v = core::linear_map_without_zero_4bit();
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (any_rank1) {
    adamw_lowbit_rank1_stats_kernel<<<static_cast<unsigned>(tiles), kStatsCols, 0, stream>>>(a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const int threads = static_cast<int>(std::min<int64_t>(block_size / 2, 256));
  adamw_lowbit_update_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (any_rank1) {
    adamw_lowbit_rank1_commit_kernel<<<a.num_slots, 256, 0, stream>>>(a.slots);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("adamw_lowbit_step_", &adamw_lowbit_step_cuda); }

}  // namespace lowbit::cuda
