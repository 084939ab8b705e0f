// The scalar reference of lowbit::adamw_lowbit_step_: the definition of the numerics that the
// CUDA kernel and the vectorized CPU kernels reproduce bit for bit (all call core/adamw_math.h,
// core/optimizer_state_formats.h and core/bf16_rounding.h per element).
//
// Per parameter, per quantization block of block_size elements (in parallel over blocks):
//   1. decode m and v of the block with the old scales into float scratch arrays;
//   2. AdamW update of every element;
//   3. new scales from the updated block (absmax over the elements whose new v is finite),
//      encode m and v with them.
// A rank-1 second moment (4-bit) needs its new row / column maxima before any element can be
// encoded, so it first runs a statistics pass over the whole parameter that computes the new v
// (the same function as step 2) and reduces the maxima; the scales are written back last,
// because every block decodes with the old ones. Max reductions are order-free, so the result
// does not depend on the number of threads.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include <lowbit/core/bf16_rounding.h>
#include <lowbit/cpu/adamw_lowbit.h>

namespace lowbit::cpu::adamw {
namespace {

using core::StateLayout;
constexpr int64_t kMaxBlock = 4096;

// The maps a layout uses for m and v.
struct Maps {
  const core::QuantMap* m;
  const core::QuantMap* v;
};

Maps maps_for(StateLayout layout) {
  if (layout == StateLayout::kDynamicTree8) return {&core::dynamic_tree_map(8, true), &core::dynamic_tree_map(8, false)};
  if (layout == StateLayout::k4bitBlockwise || layout == StateLayout::k4bitRank1)
    return {&core::dynamic_tree_map(4, true), &core::linear_map_without_zero_4bit()};
  return {nullptr, nullptr};
}

// Old rank-1 scale of flat element e.
inline float rank1_scale_at(const float* stats, int64_t rows, int64_t cols, int64_t e) {
  return core::rank1_scale(stats[e / cols], stats[rows + e % cols]);
}

// Decodes elements [begin, begin + len) of m and v (one block) into float arrays.
void decode_block(const ParamSlot& t, const Maps& maps, int64_t block, int64_t begin, int64_t len, float* m, float* v) {
  switch (t.layout) {
    case StateLayout::kFloat32: {
      const float* ms = static_cast<const float*>(t.m) + begin;
      const float* vs = static_cast<const float*>(t.v) + begin;
      std::copy(ms, ms + len, m);
      std::copy(vs, vs + len, v);
      return;
    }
    case StateLayout::kDynamicTree8: {
      const uint8_t* mc = static_cast<const uint8_t*>(t.m) + begin;
      const uint8_t* vc = static_cast<const uint8_t*>(t.v) + begin;
      for (int64_t k = 0; k < len; ++k) m[k] = core::decode_with_map(maps.m->values, mc[k], t.m_scale[block]);
      for (int64_t k = 0; k < len; ++k) v[k] = core::decode_with_map(maps.v->values, vc[k], t.v_scale[block]);
      return;
    }
    case StateLayout::kFp8: {
      const auto* mc = static_cast<const c10::Float8_e4m3fn*>(t.m) + begin;
      const auto* vc = static_cast<const c10::Float8_e4m3fn*>(t.v) + begin;
      for (int64_t k = 0; k < len; ++k) m[k] = core::decode_fp8_state(mc[k], t.m_scale[block]);
      for (int64_t k = 0; k < len; ++k) v[k] = core::decode_fp8_state(vc[k], t.v_scale[block]);
      return;
    }
    case StateLayout::k4bitBlockwise:
    case StateLayout::k4bitRank1: {
      const uint8_t* mc = static_cast<const uint8_t*>(t.m);
      const uint8_t* vc = static_cast<const uint8_t*>(t.v);
      for (int64_t k = 0; k < len; ++k) {
        const int64_t e = begin + k;
        m[k] = core::decode_with_map(maps.m->values, core::nibble(mc[e / 2], e), t.m_scale[block]);
        const float vscale = t.layout == StateLayout::k4bitRank1 ? rank1_scale_at(t.v_scale, t.rows, t.cols, e)
                                                                 : t.v_scale[block];
        v[k] = core::decode_with_map(maps.v->values, core::nibble(vc[e / 2], e), vscale);
      }
      return;
    }
  }
}

// The block's m and v absmax over the elements whose new v is finite.
float m_absmax_of(const float* m, const float* v, int64_t len) {
  float a = 0.0f;
  for (int64_t k = 0; k < len; ++k) a = std::max(a, core::m_scale_part(m[k], v[k]));
  return a;
}

float v_absmax_of(const float* v, int64_t len) {
  float a = 0.0f;
  for (int64_t k = 0; k < len; ++k) a = std::max(a, core::v_scale_part(v[k]));
  return a;
}

// Encodes the updated block; `new_stats` holds the new rank-1 row then column maxima.
void encode_block(const ParamSlot& t, const Maps& maps, int64_t block, int64_t begin, int64_t len, const float* m,
                  const float* v, const float* new_stats) {
  switch (t.layout) {
    case StateLayout::kFloat32:
      std::copy(m, m + len, static_cast<float*>(t.m) + begin);
      std::copy(v, v + len, static_cast<float*>(t.v) + begin);
      return;
    case StateLayout::kDynamicTree8: {
      const float ms = core::map_scale_from_absmax(m_absmax_of(m, v, len));
      const float vs = core::map_scale_from_absmax(v_absmax_of(v, len));
      uint8_t* mc = static_cast<uint8_t*>(t.m) + begin;
      uint8_t* vc = static_cast<uint8_t*>(t.v) + begin;
      for (int64_t k = 0; k < len; ++k) mc[k] = core::encode_with_map(maps.m->values, maps.m->size, m[k], ms);
      for (int64_t k = 0; k < len; ++k) vc[k] = core::encode_with_map(maps.v->values, maps.v->size, v[k], vs);
      t.m_scale[block] = ms;
      t.v_scale[block] = vs;
      return;
    }
    case StateLayout::kFp8: {
      const float ms = core::fp8_state_scale_from_absmax(m_absmax_of(m, v, len));
      const float vs = core::fp8_state_scale_from_absmax(v_absmax_of(v, len));
      auto* mc = static_cast<c10::Float8_e4m3fn*>(t.m) + begin;
      auto* vc = static_cast<c10::Float8_e4m3fn*>(t.v) + begin;
      for (int64_t k = 0; k < len; ++k) mc[k] = core::encode_fp8_state(m[k], ms);
      for (int64_t k = 0; k < len; ++k) vc[k] = core::encode_fp8_state(v[k], vs);
      t.m_scale[block] = ms;
      t.v_scale[block] = vs;
      return;
    }
    case StateLayout::k4bitBlockwise:
    case StateLayout::k4bitRank1: {
      const bool rank1 = t.layout == StateLayout::k4bitRank1;
      const float ms = core::map_scale_from_absmax(m_absmax_of(m, v, len));
      const float vs_block = rank1 ? 0.0f : core::map_scale_from_absmax(v_absmax_of(v, len));
      uint8_t* mc = static_cast<uint8_t*>(t.m);
      uint8_t* vc = static_cast<uint8_t*>(t.v);
      uint8_t mcode[2], vcode[2];
      for (int64_t k = 0; k < len; k += 2) {  // begin is even: blocks are whole bytes
        for (int64_t h = 0; h < 2; ++h) {
          const int64_t e = begin + k + h;
          if (k + h >= len) {
            mcode[h] = vcode[h] = 0;
            continue;
          }
          const float vs = rank1 ? rank1_scale_at(new_stats, t.rows, t.cols, e) : vs_block;
          mcode[h] = core::encode_with_map(maps.m->values, maps.m->size, m[k + h], ms);
          vcode[h] = core::encode_with_map(maps.v->values, maps.v->size, v[k + h], vs);
        }
        mc[(begin + k) / 2] = core::pack_nibbles(mcode[0], mcode[1]);
        vc[(begin + k) / 2] = core::pack_nibbles(vcode[0], vcode[1]);
      }
      t.m_scale[block] = ms;
      if (!rank1) t.v_scale[block] = vs_block;
      return;
    }
  }
}

// The AdamW update of one block: m, v in place, the parameter written back.
template <typename T>
void update_block_elements(const ParamSlot& t, int64_t begin, int64_t len, float* m, float* v,
                           bool stochastic_round) {
  T* p = static_cast<T*>(t.param) + begin;
  const T* g = static_cast<const T*>(t.grad) + begin;
  const core::AdamWCoefs c = t.coefs;
  for (int64_t k = 0; k < len; ++k) {
    const float gk = static_cast<float>(g[k]);
    m[k] = core::adamw_first_moment(m[k], gk, c);
    v[k] = core::adamw_second_moment(v[k], gk, c);
    const float pk = core::adamw_param(static_cast<float>(p[k]), m[k], v[k], c);
    if constexpr (std::is_same_v<T, float>) {
      p[k] = pk;
    } else {
      p[k] = stochastic_round
                 ? core::bf16_round_stochastic(pk, core::stochastic_rounding_bits(t.step, t.index, begin + k))
                 : core::bf16_round_nearest_even(pk);
    }
  }
}

template <typename T>
float grad_at(const ParamSlot& t, int64_t e) {
  return static_cast<float>(static_cast<const T*>(t.grad)[e]);
}

// New rank-1 statistics (rows row maxima, then cols column maxima) of the updated v.
template <typename T>
std::vector<float> rank1_statistics(const ParamSlot& t, const Maps& maps) {
  const int64_t rows = t.rows, cols = t.cols;
  const uint8_t* vc = static_cast<const uint8_t*>(t.v);
  std::vector<float> stats(rows + cols, 0.0f);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
  std::vector<std::vector<float>> col_max(chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      std::vector<float>& cm = col_max[chunk];
      cm.assign(cols, 0.0f);
      for (int64_t i = rows * chunk / chunks; i < rows * (chunk + 1) / chunks; ++i) {
        float rm = 0.0f;
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t e = i * cols + j;
          const float old = core::decode_with_map(maps.v->values, core::nibble(vc[e / 2], e),
                                                  rank1_scale_at(t.v_scale, rows, cols, e));
          const float nv = core::v_scale_part(core::adamw_second_moment(old, grad_at<T>(t, e), t.coefs));
          rm = std::max(rm, nv);
          cm[j] = std::max(cm[j], nv);
        }
        stats[i] = rm;
      }
    }
  });
  for (const auto& cm : col_max)
    for (int64_t j = 0; j < cols; ++j) stats[rows + j] = std::max(stats[rows + j], cm[j]);
  return stats;
}

template <typename T>
void step_param(const ParamSlot& t, int64_t block_size, bool stochastic_round) {
  const Maps maps = maps_for(t.layout);
  std::vector<float> new_stats;
  if (t.layout == StateLayout::k4bitRank1) new_stats = rank1_statistics<T>(t, maps);
  const int64_t blocks = core::num_blocks(t.numel, block_size);
  const int64_t grain = std::max<int64_t>(1, 16384 / block_size);
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    float m[kMaxBlock], v[kMaxBlock];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * block_size, len = std::min(block_size, t.numel - begin);
      decode_block(t, maps, b, begin, len, m, v);
      update_block_elements<T>(t, begin, len, m, v, stochastic_round);
      encode_block(t, maps, b, begin, len, m, v, new_stats.data());
    }
  });
  if (!new_stats.empty()) std::copy(new_stats.begin(), new_stats.end(), t.v_scale);
}

}  // namespace

void step_reference(const ParamSlot& slot, int64_t block_size, bool stochastic_round) {
  if (slot.numel == 0) return;
  if (slot.is_bf16) {
    step_param<c10::BFloat16>(slot, block_size, stochastic_round);
  } else {
    step_param<float>(slot, block_size, stochastic_round);
  }
}

}  // namespace lowbit::cpu::adamw
