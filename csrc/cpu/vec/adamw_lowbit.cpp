// The vectorized CPU kernel of lowbit::adamw_lowbit_step_, compiled once per instruction set
// (cmake/LowbitCpuKernels.cmake: CPU_CAPABILITY set so at::vec's inline namespace differs, and
// -ffp-contract=off) and handed out by csrc/cpu/vec_dispatch.cpp as Kernels::adamw_lowbit_step.
// Equal bit for bit to the scalar reference (csrc/cpu/adamw_lowbit_reference.cpp): the same
// operations on the same floats, in the same order, with no fused multiply-add;
// tests/cpp/test_optim_kernels.cpp runs every kernel set against it.
//
// Per quantization block, in parallel over blocks, like the reference:
//   decode   codes -> floats: one gather from the code table per vector (8-bit, fp8), a permute
//            of the 16-entry table (4-bit), times the block's scale;
//   update   the AdamW element math on at::vec::Vectorized<float>, with the finite absmax of the
//            new m and v accumulated in registers;
//   encode   floats -> codes: x * (1 / scale), then the map's bucket table (map_lookup.h: one gather
//            and one compare instead of an 8-step binary search), or c10's float -> e4m3
//            rounding in integer lanes (fp8).
// The lane-level steps (gathers, nibble packing, narrowing) are in adamw_lowbit_lanes.h. Tails
// shorter than a vector run the reference's scalar functions.
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include <lowbit/core/bf16_rounding.h>
#include <lowbit/cpu/adamw_lowbit.h>
#include <lowbit/cpu/adamw_lowbit_tables.h>
#include <lowbit/cpu/vec/adamw_lowbit_lanes.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

using adamw::KernelTables;
using adamw::ParamSlot;

constexpr int64_t kMaxBlock = 4096;

// ---- one block ---------------------------------------------------------------------------------

// Per element of a block, from per-row then per-column values (rows then cols floats): the
// rank-1 scale min(row, column) of raised statistics (Rank1::scales), or the reciprocal
// max(1 / row, 1 / column) = 1 / min(row, column) of their reciprocals (Rank1::reciprocals).
template <bool kReciprocal>
void fill_rank1(const float* stats, int64_t rows, int64_t cols, int64_t begin, int64_t len, float* out) {
  auto pick = [](Vec a, Vec b) { return kReciprocal ? max_not_nan(a, b) : min_not_nan(a, b); };
  int64_t k = 0;
  while (k < len) {
    const int64_t e = begin + k, i = e / cols, j = e % cols, n = std::min(len - k, cols - j);
    const Vec r(stats[i]);
    const float* c = stats + rows + j;
    int64_t u = 0;
    for (; u + kN <= n; u += kN) pick(r, Vec::loadu(c + u)).store(out + k + u);
    for (; u < n; ++u) out[k + u] = kReciprocal ? std::max(stats[i], c[u]) : std::min(stats[i], c[u]);
    k += n;
  }
}

// A parameter's rank-1 statistics as the kernel reads them: each raised by core::normal_scale,
// so min(row, column) is core::rank1_scale, and the reciprocals of the new ones.
struct Rank1 {
  std::unique_ptr<float[]> scales, reciprocals;
};

std::unique_ptr<float[]> raised(const float* stats, int64_t n) {
  std::unique_ptr<float[]> out(new float[n]);
  for (int64_t i = 0; i < n; ++i) out[i] = core::normal_scale(stats[i]);
  return out;
}

#if defined(CPU_CAPABILITY_AVX512)
// The code order that makes decode_codes_vbmi's in-lane unpacks return codes in order: byte
// lane * 16 + 4 * r + w of the reordered codes is code 16 * r + 4 * lane + w.
struct VbmiDecodeOrder {
  alignas(64) uint8_t at[64];
  constexpr VbmiDecodeOrder() : at() {
    for (int lane = 0; lane < 4; ++lane)
      for (int r = 0; r < 4; ++r)
        for (int w = 0; w < 4; ++w) at[lane * 16 + 4 * r + w] = static_cast<uint8_t>(16 * r + 4 * lane + w);
  }
};
constexpr VbmiDecodeOrder kVbmiDecodeOrder;

// decode_codes for 64 codes at a time with byte permutes (AVX-512 VBMI): each byte plane of the
// table is two vpermi2b lookups (entries 0-127, 128-255) and a blend on the code's top bit; two
// rounds of unpacks put the four planes' bytes back together as floats. The codes are first
// reordered (one vpermb) so the unpacks, which work within 128-bit lanes, return them in order.
// Returns how many codes it decoded (a multiple of 64).
__attribute__((target("avx512vbmi"))) int64_t decode_codes_vbmi(const adamw::BytePlanes256& planes,
                                                                const uint8_t* codes, float scale, int64_t len,
                                                                float* out) {
  const __m512i perm = _mm512_load_si512(kVbmiDecodeOrder.at);
  __m512i t[4][4];
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 4; ++q) t[p][q] = _mm512_load_si512(planes.plane[p] + 64 * q);
  const __m512 s = _mm512_set1_ps(scale);
  int64_t k = 0;
  for (; k + 64 <= len; k += 64) {
    const __m512i c = _mm512_permutexvar_epi8(perm, _mm512_loadu_si512(codes + k));
    const __mmask64 upper = _mm512_movepi8_mask(c);
    __m512i b[4];
    for (int p = 0; p < 4; ++p)
      b[p] = _mm512_mask_blend_epi8(upper, _mm512_permutex2var_epi8(t[p][0], c, t[p][1]),
                                    _mm512_permutex2var_epi8(t[p][2], c, t[p][3]));
    const __m512i lo01 = _mm512_unpacklo_epi8(b[0], b[1]), hi01 = _mm512_unpackhi_epi8(b[0], b[1]);
    const __m512i lo23 = _mm512_unpacklo_epi8(b[2], b[3]), hi23 = _mm512_unpackhi_epi8(b[2], b[3]);
    _mm512_storeu_ps(out + k, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(lo01, lo23)), s));
    _mm512_storeu_ps(out + k + 16, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(lo01, lo23)), s));
    _mm512_storeu_ps(out + k + 32, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(hi01, hi23)), s));
    _mm512_storeu_ps(out + k + 48, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(hi01, hi23)), s));
  }
  return k;
}

#endif

// Decodes len 8-bit codes with one scale (core::decode_with_map).
void decode_codes(const float* table, const adamw::BytePlanes256& planes, const uint8_t* codes, float scale,
                  int64_t len, float* out) {
  const Vec s(scale);
  int64_t k = 0;
#if defined(CPU_CAPABILITY_AVX512)
  if (cpu_has_vbmi()) k = decode_codes_vbmi(planes, codes, scale, len, out);
#endif
  for (; k + kN <= len; k += kN) (gather_codes(table, codes + k) * s).store(out + k);
  for (; k < len; ++k) out[k] = core::mul_rn(table[codes[k]], scale);
}

// Decodes len e4m3 codes with one scale (core::decode_fp8_state).
void decode_fp8(const float* table, const uint8_t* codes, float scale, int64_t len, float* out) {
  const Vec s(scale);
  int64_t k = 0;
  for (; k + kN <= len; k += kN) (decode_e4m3(codes + k) * s).store(out + k);
  for (; k < len; ++k) out[k] = core::mul_rn(table[codes[k]], scale);
}

// Decodes len 4-bit codes starting at even element `begin` of the packed bytes.
void decode_nibbles(const float* table16, const uint8_t* bytes, int64_t begin, const float* scales, float scale,
                    int64_t len, float* out) {
  int64_t k = 0;
  for (; k + kN <= len; k += kN) {
    const Vec s = scales ? Vec::loadu(scales + k) : Vec(scale);
    (gather_nibbles(table16, bytes + (begin + k) / 2) * s).store(out + k);
  }
  for (; k < len; ++k) {
    const int64_t e = begin + k;
    out[k] = core::mul_rn(table16[core::nibble(bytes[e / 2], e)], scales ? scales[k] : scale);
  }
}

// Encodes len values with a map: out[k] = nearest code of normalize(x[k], 1 / scale).
void encode_map(const LookupView& lk, const core::QuantMap& map, const float* x, float scale, int64_t len,
                uint8_t* out) {
  if (!(scale > 0.0f)) {
    std::memset(out, lk.zero_index, len);
    return;
  }
  const Vec r(core::scale_reciprocal(scale));
  int64_t k = 0;
  for (; k + kN <= len; k += kN) store_bytes(lookup_index(lk, normalize(Vec::loadu(x + k), r)), out + k);
  for (; k < len; ++k) out[k] = core::encode_with_map(map.values, map.size, x[k], scale);
}

// The same for a 16-entry map as packed nibbles from even element `begin`, with one scale or
// per-element reciprocals of the scales.
void encode_map_nibbles(const Search16& search, const core::QuantMap& map, const float* x,
                        const float* reciprocals, float scale, int64_t begin, int64_t len, uint8_t* bytes) {
  const Vec r(core::scale_reciprocal(scale));
  int64_t k = 0;
  for (; k + kN <= len; k += kN) {
    const Vec xv = Vec::loadu(x + k);
    const Vec q = reciprocals ? normalize_any(xv, Vec::loadu(reciprocals + k))
                              : (scale > 0.0f ? normalize(xv, r) : Vec(0.0f));
    store_nibbles(search_index16(search, q), bytes + (begin + k) / 2);
  }
  for (; k < len; k += 2) {
    uint8_t code[2] = {0, 0};
    for (int64_t h = 0; h < 2 && k + h < len; ++h) {
      const float q = reciprocals ? core::normalize_by_reciprocal(x[k + h], reciprocals[k + h])
                                  : core::normalize_by_scale(x[k + h], scale);
      code[h] = static_cast<uint8_t>(core::nearest_map_index(map.values, map.size, q));
    }
    bytes[(begin + k) / 2] = core::pack_nibbles(code[0], code[1]);
  }
}

void encode_fp8(const float* x, float scale, int64_t len, uint8_t* out) {
  const Vec r(core::scale_reciprocal(scale)), lo(-core::kE4M3Max), hi(core::kE4M3Max);
  const bool zero = !(scale > 0.0f);
  int64_t k = 0;
  for (; k + kN <= len; k += kN) {
    const Vec xv = Vec::loadu(x + k);
    // NaN lanes give a NaN q; at::vec::clamp keeps it, and store_e4m3 replaces it.
    const Vec q = zero ? Vec(0.0f) : at::vec::clamp(xv * r, lo, hi);
    store_e4m3(xv, q, out + k);
  }
  for (; k < len; ++k) out[k] = core::encode_fp8_state(x[k], scale).x;
}

// The AdamW update of len elements: m, v in place, p_out = new parameter (float).
// Returns the block scales' absmax of the new m and v (core::m_scale_part, v_scale_part).
std::pair<float, float> update(const core::AdamWCoefs& c, const float* g, const float* p, float* m, float* v,
                               float* p_out, int64_t len) {
  const Vec omb1(c.one_minus_beta1), b2(c.beta2), omb2(c.one_minus_beta2), eps(c.eps), decay(c.decay),
      step_size(c.step_size), bc2_sqrt(c.bc2_sqrt);
  Vec am(0.0f), av(0.0f);
  int64_t k = 0;
  for (; k + kN <= len; k += kN) {
    const Vec gk = Vec::loadu(g + k);
    Vec mk = Vec::loadu(m + k), vk = Vec::loadu(v + k);
    mk = mk + omb1 * (gk - mk);                             // core::adamw_first_moment
    vk = b2 * vk + (omb2 * gk) * gk;                        // core::adamw_second_moment
    const Vec denom = vk.sqrt() / bc2_sqrt + eps;           // core::adamw_param
    const Vec pk = Vec::loadu(p + k) * decay - step_size * (mk / denom);
    mk.store(m + k);
    vk.store(v + k);
    pk.store(p_out + k);
    am = max_not_nan(am, m_scale_part(mk, vk));
    av = max_not_nan(av, finite_abs(vk));
  }
  float ma = reduce_max(am), va = reduce_max(av);
  for (; k < len; ++k) {
    m[k] = core::adamw_first_moment(m[k], g[k], c);
    v[k] = core::adamw_second_moment(v[k], g[k], c);
    p_out[k] = core::adamw_param(p[k], m[k], v[k], c);
    ma = std::max(ma, core::m_scale_part(m[k], v[k]));
    va = std::max(va, core::v_scale_part(v[k]));
  }
  return {ma, va};
}

// bf16 -> float (exact: the bf16 bits are the float's top half), in a loop the compiler vectorizes.
void bf16_to_float(const c10::BFloat16* in, int64_t len, float* out) {
  const uint16_t* raw = reinterpret_cast<const uint16_t*>(in);
  uint32_t* bits = reinterpret_cast<uint32_t*>(out);
  for (int64_t k = 0; k < len; ++k) bits[k] = static_cast<uint32_t>(raw[k]) << 16;
}

// float -> bf16 as core::bf16_round_nearest_even / bf16_round_stochastic with
// core::stochastic_rounding_bits(step, index, first + k), written branch-free so the compiler
// vectorizes it (64-bit lanes for the hash); the tests prove it equal to those functions.
template <bool kStochastic>
void float_to_bf16(const float* in, int64_t len, int64_t step, int64_t index, int64_t first, c10::BFloat16* out) {
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(in);
  uint16_t* raw = reinterpret_cast<uint16_t*>(out);
  for (int64_t k = 0; k < len; ++k) {
    const uint32_t u = bits[k];
    const uint32_t nearest = (u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    if constexpr (kStochastic) {
      const uint32_t r = core::stochastic_rounding_bits(step, index, first + k);
      raw[k] = static_cast<uint16_t>((u & 0x7F800000u) == 0x7F800000u ? nearest : (u + r) >> 16);
    } else {
      raw[k] = static_cast<uint16_t>(nearest);
    }
  }
}

// Scratch of one task (one thread's run of blocks).
struct Scratch {
  alignas(64) float m[kMaxBlock], v[kMaxBlock], p[kMaxBlock], g[kMaxBlock], s_old[kMaxBlock], s_new[kMaxBlock];
};

template <core::StateLayout L, typename P>
void step_block(const ParamSlot& t, const KernelTables& tb, int64_t block, int64_t block_size, bool sr,
                const Rank1& rank1, Scratch& s) {
  using core::StateLayout;
  const int64_t begin = block * block_size, len = std::min(block_size, t.numel - begin);
  P* param = static_cast<P*>(t.param) + begin;
  const P* grad = static_cast<const P*>(t.grad) + begin;
  const float *g, *p;
  float* p_out;
  if constexpr (std::is_same_v<P, float>) {
    g = grad;
    p = p_out = param;
  } else {
    bf16_to_float(grad, len, s.g);
    bf16_to_float(param, len, s.p);
    g = s.g;
    p = p_out = s.p;
  }
  float *m = s.m, *v = s.v;
  const uint8_t* mc = static_cast<const uint8_t*>(t.m);
  const uint8_t* vc = static_cast<const uint8_t*>(t.v);
  if constexpr (L == StateLayout::kFloat32) {
    m = static_cast<float*>(t.m) + begin;
    v = static_cast<float*>(t.v) + begin;
  } else if constexpr (L == StateLayout::kDynamicTree8) {
    decode_codes(tb.map8_m->values, *tb.planes8_m, mc + begin, t.m_scale[block], len, m);
    decode_codes(tb.map8_v->values, *tb.planes8_v, vc + begin, t.v_scale[block], len, v);
  } else if constexpr (L == StateLayout::kFp8) {
    decode_fp8(tb.e4m3, mc + begin, t.m_scale[block], len, m);
    decode_fp8(tb.e4m3, vc + begin, t.v_scale[block], len, v);
  } else {
    decode_nibbles(tb.map4_m->values, mc, begin, nullptr, t.m_scale[block], len, m);
    if constexpr (L == StateLayout::k4bitRank1) {
      fill_rank1<false>(rank1.scales.get(), t.rows, t.cols, begin, len, s.s_old);
      decode_nibbles(tb.map4_v->values, vc, begin, s.s_old, 0.0f, len, v);
    } else {
      decode_nibbles(tb.map4_v->values, vc, begin, nullptr, t.v_scale[block], len, v);
    }
  }

  const auto [m_absmax, v_absmax] = update(t.coefs, g, p, m, v, p_out, len);

  if constexpr (!std::is_same_v<P, float>) {
    if (sr) {
      float_to_bf16<true>(s.p, len, t.step, t.index, begin, param);
    } else {
      float_to_bf16<false>(s.p, len, t.step, t.index, begin, param);
    }
  }
  uint8_t* mo = static_cast<uint8_t*>(t.m);
  uint8_t* vo = static_cast<uint8_t*>(t.v);
  if constexpr (L == StateLayout::kDynamicTree8) {
    const float ms = core::map_scale_from_absmax(m_absmax), vs = core::map_scale_from_absmax(v_absmax);
    encode_map(tb.lookup8_m, *tb.map8_m, m, ms, len, mo + begin);
    encode_map(tb.lookup8_v, *tb.map8_v, v, vs, len, vo + begin);
    t.m_scale[block] = ms;
    t.v_scale[block] = vs;
  } else if constexpr (L == StateLayout::kFp8) {
    const float ms = core::fp8_state_scale_from_absmax(m_absmax), vs = core::fp8_state_scale_from_absmax(v_absmax);
    encode_fp8(m, ms, len, mo + begin);
    encode_fp8(v, vs, len, vo + begin);
    t.m_scale[block] = ms;
    t.v_scale[block] = vs;
  } else if constexpr (L == StateLayout::k4bitBlockwise || L == StateLayout::k4bitRank1) {
    const float ms = core::map_scale_from_absmax(m_absmax);
    encode_map_nibbles(tb.search4_m, *tb.map4_m, m, nullptr, ms, begin, len, mo);
    if constexpr (L == StateLayout::k4bitRank1) {
      fill_rank1<true>(rank1.reciprocals.get(), t.rows, t.cols, begin, len, s.s_new);
      encode_map_nibbles(tb.search4_v, *tb.map4_v, v, s.s_new, 0.0f, begin, len, vo);
    } else {
      const float vs = core::map_scale_from_absmax(v_absmax);
      encode_map_nibbles(tb.search4_v, *tb.map4_v, v, nullptr, vs, begin, len, vo);
      t.v_scale[block] = vs;
    }
    t.m_scale[block] = ms;
  }
}

// New rank-1 statistics (row maxima, then column maxima) of the updated v, over row chunks.
// Buffers are plain arrays: an out-of-line std::vector member emitted here would be built for this
// file's instruction set, and the linker could hand that copy to code running anywhere.
template <typename P>
std::unique_ptr<float[]> rank1_statistics(const ParamSlot& t, const KernelTables& tb, const float* old_scales) {
  const int64_t rows = t.rows, cols = t.cols;
  const uint8_t* vc = static_cast<const uint8_t*>(t.v);
  const P* grad = static_cast<const P*>(t.grad);
  const float* table = tb.map4_v->values;
  const core::AdamWCoefs c = t.coefs;
  std::unique_ptr<float[]> stats(new float[rows + cols]());
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
  std::unique_ptr<float[]> col_max(new float[chunks * cols]());  // one row of column maxima per chunk
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::unique_ptr<uint8_t[]> codes(new uint8_t[cols]);
    std::unique_ptr<float[]> g(new float[cols]);
    const Vec b2(c.beta2), omb2(c.one_minus_beta2);
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      float* cm = col_max.get() + chunk * cols;
      for (int64_t i = rows * chunk / chunks; i < rows * (chunk + 1) / chunks; ++i) {
        const int64_t e0 = i * cols;
        const bool even = e0 % 2 == 0;  // the row starts on a byte: its nibbles decode in place
        if (!even)
          for (int64_t j = 0; j < cols; ++j) codes[j] = core::nibble(vc[(e0 + j) / 2], e0 + j);
        const float* gf;
        if constexpr (std::is_same_v<P, float>) {
          gf = grad + e0;
        } else {
          bf16_to_float(grad + e0, cols, g.get());
          gf = g.get();
        }
        const float* col_old = old_scales + rows;  // the old rank-1 scale of (i, j): min(row i, column j)
        const Vec row_old(old_scales[i]);
        Vec rm(0.0f);
        int64_t j = 0;
        for (; j + kN <= cols; j += kN) {
          const Vec code_value = even ? gather_nibbles(table, vc + (e0 + j) / 2) : gather_codes(table, codes.get() + j);
          const Vec old = code_value * min_not_nan(row_old, Vec::loadu(col_old + j));
          const Vec gj = Vec::loadu(gf + j);
          const Vec nv = finite_abs(b2 * old + (omb2 * gj) * gj);  // core::adamw_second_moment
          rm = max_not_nan(rm, nv);
          max_not_nan(Vec::loadu(cm + j), nv).store(cm + j);
        }
        float r = reduce_max(rm);
        for (; j < cols; ++j) {
          const float old = core::mul_rn(table[core::nibble(vc[(e0 + j) / 2], e0 + j)],
                                         core::rank1_scale(old_scales[i], col_old[j]));
          const float nv = core::v_scale_part(core::adamw_second_moment(old, gf[j], c));
          r = std::max(r, nv);
          cm[j] = std::max(cm[j], nv);
        }
        stats[i] = r;
      }
    }
  });
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t j = 0; j < cols; ++j) stats[rows + j] = std::max(stats[rows + j], col_max[chunk * cols + j]);
  return stats;
}

template <core::StateLayout L, typename P>
void step_layout(const ParamSlot& t, int64_t block_size, bool sr) {
  const KernelTables& tb = adamw::kernel_tables();
  std::unique_ptr<float[]> new_stats;
  Rank1 rank1;
  if constexpr (L == core::StateLayout::k4bitRank1) {
    const int64_t n = t.rows + t.cols;
    rank1.scales = raised(t.v_scale, n);
    new_stats = rank1_statistics<P>(t, tb, rank1.scales.get());
    rank1.reciprocals = raised(new_stats.get(), n);
    for (int64_t i = 0; i < n; ++i) rank1.reciprocals[i] = core::scale_reciprocal(rank1.reciprocals[i]);
  }
  const int64_t blocks = core::num_blocks(t.numel, block_size);
  const int64_t grain = std::max<int64_t>(1, 32768 / block_size);
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    auto scratch = std::make_unique<Scratch>();
    for (int64_t b = b0; b < b1; ++b) step_block<L, P>(t, tb, b, block_size, sr, rank1, *scratch);
  });
  if (new_stats) std::memcpy(t.v_scale, new_stats.get(), sizeof(float) * (t.rows + t.cols));
}

template <typename P>
void step_typed(const ParamSlot& t, int64_t block_size, bool sr) {
  using core::StateLayout;
  switch (t.layout) {
    case StateLayout::kFloat32: return step_layout<StateLayout::kFloat32, P>(t, block_size, sr);
    case StateLayout::kDynamicTree8: return step_layout<StateLayout::kDynamicTree8, P>(t, block_size, sr);
    case StateLayout::kFp8: return step_layout<StateLayout::kFp8, P>(t, block_size, sr);
    case StateLayout::k4bitBlockwise: return step_layout<StateLayout::k4bitBlockwise, P>(t, block_size, sr);
    case StateLayout::k4bitRank1: return step_layout<StateLayout::k4bitRank1, P>(t, block_size, sr);
  }
}

}  // namespace

// Kernels::adamw_lowbit_step (registry.cpp): one parameter, in place.
void adamw_lowbit_step(const ParamSlot& t, int64_t block_size, bool stochastic_round) {
  if (t.numel == 0) return;
  if (t.is_bf16) {
    step_typed<c10::BFloat16>(t, block_size, stochastic_round);
  } else {
    step_typed<float>(t, block_size, stochastic_round);
  }
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
