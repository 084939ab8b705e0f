// The vectorized CPU kernel of lowbit::adamw_lowbit_step_, included once per instruction set by
// adamw_lowbit_vectorized{,_avx2,_avx512}.cpp (each built with its flags, CPU_CAPABILITY set so
// at::vec's inline namespace differs, and -ffp-contract=off). Equal bit for bit to the scalar
// reference (adamw_lowbit_reference.cpp): the same operations on the same floats, in the same
// order, with no fused multiply-add; tests/cpp/test_optim_kernels.cpp runs both.
//
// Per quantization block, in parallel over blocks, like the reference:
//   decode   codes -> floats: one gather from the code table per vector (8-bit, fp8), a permute
//            of the 16-entry table (4-bit), times the block's scale;
//   update   the AdamW element math on at::vec::Vectorized<float>, with the finite absmax of the
//            new m and v accumulated in registers;
//   encode   floats -> codes: x / scale, then the map's bucket table (map_lookup.h: one gather
//            and one compare instead of an 8-step binary search), or c10's float -> e4m3
//            rounding in integer lanes (fp8).
// The byte-level steps (gathers, nibble packing, narrowing) use intrinsics where at::vec has no
// operation for them; the DEFAULT build does them one lane at a time with the scalar functions.
// Tails shorter than a vector run the reference's scalar functions.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include <lowbit/core/bf16_rounding.h>
#include <lowbit/cpu/adamw_lowbit.h>
#include <lowbit/cpu/adamw_lowbit_tables.h>

namespace lowbit::cpu::adamw {
namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int kN = Vec::size();
constexpr int64_t kMaxBlock = 4096;
constexpr float kFltMax = 3.40282346638528859812e+38f;

// ---- byte-level helpers: kN lanes at a time ---------------------------------------------------

#if defined(CPU_CAPABILITY_AVX512)

// table[codes[k]], k < kN.
inline Vec gather_codes(const float* table, const uint8_t* codes) {
  const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
  return _mm512_i32gather_ps(idx, table, 4);
}

// The float value of kN e4m3fn bytes (c10's conversion; NaN for 0x7F / 0xFF): arithmetic on the
// bits, which is cheaper than a gather from the 256-entry table.
inline Vec decode_e4m3(const uint8_t* bytes) {
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)));
  const __m512i em = _mm512_and_si512(b, _mm512_set1_epi32(0x7F));  // exponent and mantissa
  const __m512 normal = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(em, 20), _mm512_set1_epi32(120 << 23)));
  const __m512 subnormal = _mm512_mul_ps(_mm512_cvtepi32_ps(em), _mm512_set1_ps(1.0f / 512));  // m * 2^-9
  __m512 mag = _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(em, _mm512_set1_epi32(8)), normal, subnormal);
  mag = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(em, _mm512_set1_epi32(0x7F)), mag, _mm512_set1_ps(NAN));
  return _mm512_or_ps(mag, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x80)), 24)));
}

// table16[nibble k] of the kN / 2 bytes (element 2j in the low nibble of byte j).
inline Vec gather_nibbles(const float* table16, const uint8_t* bytes) {
  const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
  const __m128i split = _mm_or_si128(_mm_and_si128(w, _mm_set1_epi16(0xF)), _mm_slli_epi16(_mm_srli_epi16(w, 4), 8));
  return _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(split), _mm512_loadu_ps(table16));
}

// lookup.index(q) per lane (q not NaN).
inline __m512i lookup_index(const LookupView& lk, Vec qv) {
  const __m512 q = _mm512_min_ps(_mm512_max_ps(qv, _mm512_set1_ps(-1.0f)), _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_castps_si512(q);
  const __m512i magp = _mm512_max_epi32(
      _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(lk.collapse)),
      _mm512_setzero_si512());
  const __m512i ordered = _mm512_xor_si512(magp, _mm512_srai_epi32(bits, 31));
  const __m512i key =
      _mm512_sub_epi32(_mm512_sra_epi32(ordered, _mm_cvtsi32_si128(lk.shift)), _mm512_set1_epi32(lk.key_min));
  const __m512i e = _mm512_i32gather_epi32(key, lk.entries, 4);
  const __m512i low = _mm512_and_si512(ordered, _mm512_set1_epi32((1 << lk.shift) - 1));
  const __m512i base = _mm512_srli_epi32(e, 24);
  const __mmask16 up = _mm512_cmpge_epi32_mask(low, _mm512_and_si512(e, _mm512_set1_epi32(0xFFFFFF)));
  return _mm512_mask_add_epi32(base, up, base, _mm512_set1_epi32(1));
}

// search.index(q) per lane (q not NaN): a binary search whose candidates come from one permute.
inline __m512i search_index16(const Search16& search, Vec qv) {
  const __m512 q = qv, all = _mm512_load_ps(search.all);
  __m512i idx = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(q, _mm512_set1_ps(search.all[8]), _CMP_GE_OQ),
                                       _mm512_set1_epi32(8));
  for (int half = 4; half > 0; half /= 2) {
    const __m512i h = _mm512_set1_epi32(half);
    const __m512 candidate = _mm512_permutexvar_ps(_mm512_add_epi32(idx, h), all);
    idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(q, candidate, _CMP_GE_OQ), idx, h);
  }
  return idx;
}

// max for lanes that are not NaN (at::vec::maximum spends three more operations on NaN).
inline Vec max_not_nan(Vec a, Vec b) { return _mm512_max_ps(a, b); }
inline Vec min_not_nan(Vec a, Vec b) { return _mm512_min_ps(a, b); }

inline void store_bytes(__m512i idx, uint8_t* out) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(idx));
}

// Codes (< 16) of kN lanes as kN / 2 bytes, lane 2j in the low nibble.
inline void store_nibbles(__m512i idx, uint8_t* out) {
  const __m128i b = _mm512_cvtepi32_epi8(idx);
  const __m128i packed = _mm_and_si128(_mm_or_si128(b, _mm_srli_epi16(b, 4)), _mm_set1_epi16(0xFF));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(packed, packed));
}

// c10's fp32 -> e4m3fn rounding (round to nearest even), for finite |q| <= 448, in integer lanes.
inline __m512i e4m3_bits(Vec qv) {
  const __m512i bits = _mm512_castps_si512(qv);
  const __m512i sign = _mm512_and_si512(bits, _mm512_set1_epi32(INT32_MIN));
  const __m512i a = _mm512_xor_si512(bits, sign);
  const __m512i denorm_mask = _mm512_set1_epi32(141 << 23);
  const __m512i denorm = _mm512_sub_epi32(
      _mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(denorm_mask))), denorm_mask);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(a, 20), _mm512_set1_epi32(1));
  const __m512i normal =
      _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(a, _mm512_set1_epi32(-(120 << 23) + 0x7FFFF)), odd), 20);
  const __m512i r = _mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(a, _mm512_set1_epi32(121 << 23)), normal, denorm);
  return _mm512_or_si512(r, _mm512_srli_epi32(sign, 24));
}

// The fp8 state code of x (any float) given q = clamp(x / scale): NaN x gives 0x7F.
inline void store_e4m3(Vec x, Vec q, uint8_t* out) {
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  store_bytes(_mm512_mask_mov_epi32(e4m3_bits(q), nan, _mm512_set1_epi32(0x7F)), out);
}

#elif defined(CPU_CAPABILITY_AVX2)

inline Vec gather_codes(const float* table, const uint8_t* codes) {
  const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
  return _mm256_i32gather_ps(table, idx, 4);
}

inline Vec decode_e4m3(const uint8_t* bytes) {
  const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
  const __m256i em = _mm256_and_si256(b, _mm256_set1_epi32(0x7F));
  const __m256 normal = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(em, 20), _mm256_set1_epi32(120 << 23)));
  const __m256 subnormal = _mm256_mul_ps(_mm256_cvtepi32_ps(em), _mm256_set1_ps(1.0f / 512));
  __m256 mag = _mm256_blendv_ps(normal, subnormal, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), em)));
  mag = _mm256_blendv_ps(mag, _mm256_set1_ps(NAN), _mm256_castsi256_ps(_mm256_cmpeq_epi32(em, _mm256_set1_epi32(0x7F))));
  return _mm256_or_ps(mag, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x80)), 24)));
}

inline Vec gather_nibbles(const float* table16, const uint8_t* bytes) {
  int32_t four;
  std::memcpy(&four, bytes, 4);
  const __m128i w = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(four));
  const __m128i split = _mm_or_si128(_mm_and_si128(w, _mm_set1_epi16(0xF)), _mm_slli_epi16(_mm_srli_epi16(w, 4), 8));
  const __m256i idx = _mm256_cvtepu8_epi32(split);
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table16), idx);
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table16 + 8), idx);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3 picks the half
}

inline __m256i lookup_index(const LookupView& lk, Vec qv) {
  const __m256 q = _mm256_min_ps(_mm256_max_ps(qv, _mm256_set1_ps(-1.0f)), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_castps_si256(q);
  const __m256i magp = _mm256_max_epi32(
      _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(lk.collapse)),
      _mm256_setzero_si256());
  const __m256i ordered = _mm256_xor_si256(magp, _mm256_srai_epi32(bits, 31));
  const __m256i key =
      _mm256_sub_epi32(_mm256_sra_epi32(ordered, _mm_cvtsi32_si128(lk.shift)), _mm256_set1_epi32(lk.key_min));
  const __m256i e = _mm256_i32gather_epi32(lk.entries, key, 4);
  const __m256i low = _mm256_and_si256(ordered, _mm256_set1_epi32((1 << lk.shift) - 1));
  const __m256i below = _mm256_cmpgt_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0xFFFFFF)), low);  // -1 or 0
  return _mm256_add_epi32(_mm256_add_epi32(_mm256_srli_epi32(e, 24), _mm256_set1_epi32(1)), below);
}

inline __m256i search_index16(const Search16& search, Vec qv) {
  const __m256 q = qv;
  auto step = [&](__m256i idx, const float* table, int shift, int half) {
    const __m256 candidate = _mm256_permutevar8x32_ps(_mm256_load_ps(table), _mm256_srli_epi32(idx, shift));
    return _mm256_add_epi32(idx, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(q, candidate, _CMP_GE_OQ)),
                                                  _mm256_set1_epi32(half)));
  };
  __m256i idx = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(q, _mm256_set1_ps(search.all[8]), _CMP_GE_OQ)),
                                 _mm256_set1_epi32(8));
  idx = step(idx, search.step1, 3, 4);
  idx = step(idx, search.step2, 2, 2);
  return step(idx, search.step3, 1, 1);
}

inline Vec max_not_nan(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec min_not_nan(Vec a, Vec b) { return _mm256_min_ps(a, b); }

inline __m128i narrow_bytes(__m256i idx) {  // 8 lanes in [0, 255] -> 8 bytes (low half)
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(idx), _mm256_extracti128_si256(idx, 1));
  return _mm_packus_epi16(w, w);
}

inline void store_bytes(__m256i idx, uint8_t* out) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), narrow_bytes(idx));
}

inline void store_nibbles(__m256i idx, uint8_t* out) {
  const __m128i b = narrow_bytes(idx);
  const __m128i packed = _mm_and_si128(_mm_or_si128(b, _mm_srli_epi16(b, 4)), _mm_set1_epi16(0xFF));
  const int32_t four = _mm_cvtsi128_si32(_mm_packus_epi16(packed, packed));
  std::memcpy(out, &four, 4);
}

inline __m256i e4m3_bits(Vec qv) {
  const __m256i bits = _mm256_castps_si256(qv);
  const __m256i sign = _mm256_and_si256(bits, _mm256_set1_epi32(INT32_MIN));
  const __m256i a = _mm256_xor_si256(bits, sign);
  const __m256i denorm_mask = _mm256_set1_epi32(141 << 23);
  const __m256i denorm = _mm256_sub_epi32(
      _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(denorm_mask))), denorm_mask);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
  const __m256i normal =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(-(120 << 23) + 0x7FFFF)), odd), 20);
  const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(121 << 23), a);
  return _mm256_or_si256(_mm256_blendv_epi8(normal, denorm, small), _mm256_srli_epi32(sign, 24));
}

inline void store_e4m3(Vec x, Vec q, uint8_t* out) {
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  store_bytes(_mm256_blendv_epi8(_mm256_and_si256(e4m3_bits(q), _mm256_set1_epi32(0xFF)), _mm256_set1_epi32(0x7F), nan),
              out);
}

#else  // DEFAULT: one lane at a time, with the scalar functions

struct Lanes {
  int32_t v[kN];
};

inline Vec gather_codes(const float* table, const uint8_t* codes) {
  alignas(64) float out[kN];
  for (int k = 0; k < kN; ++k) out[k] = table[codes[k]];
  return Vec::loadu(out);
}

inline Vec decode_e4m3(const uint8_t* bytes) {
  alignas(64) float out[kN];
  for (int k = 0; k < kN; ++k) out[k] = static_cast<float>(c10::Float8_e4m3fn(bytes[k], c10::Float8_e4m3fn::from_bits()));
  return Vec::loadu(out);
}

inline Vec gather_nibbles(const float* table16, const uint8_t* bytes) {
  alignas(64) float out[kN];
  for (int k = 0; k < kN; ++k) out[k] = table16[core::nibble(bytes[k / 2], k)];
  return Vec::loadu(out);
}

inline Lanes lookup_index(const LookupView& lk, Vec qv) {
  alignas(64) float q[kN];
  qv.store(q);
  Lanes r;
  for (int k = 0; k < kN; ++k) r.v[k] = lk.index(q[k]);
  return r;
}

inline Lanes search_index16(const Search16& search, Vec qv) {
  alignas(64) float q[kN];
  qv.store(q);
  Lanes r;
  for (int k = 0; k < kN; ++k) r.v[k] = search.index(q[k]);
  return r;
}

inline Vec max_not_nan(Vec a, Vec b) { return at::vec::maximum(a, b); }
inline Vec min_not_nan(Vec a, Vec b) { return at::vec::minimum(a, b); }

inline void store_bytes(const Lanes& idx, uint8_t* out) {
  for (int k = 0; k < kN; ++k) out[k] = static_cast<uint8_t>(idx.v[k]);
}

inline void store_nibbles(const Lanes& idx, uint8_t* out) {
  for (int k = 0; k < kN; k += 2)
    out[k / 2] = core::pack_nibbles(static_cast<uint8_t>(idx.v[k]), static_cast<uint8_t>(idx.v[k + 1]));
}

inline void store_e4m3(Vec xv, Vec qv, uint8_t* out) {
  alignas(64) float x[kN], q[kN];
  xv.store(x);
  qv.store(q);
  for (int k = 0; k < kN; ++k) out[k] = x[k] != x[k] ? 0x7F : c10::Float8_e4m3fn(q[k]).x;
}

#endif

// |x| where finite, else 0 (core::finite_abs, core::v_scale_part per lane).
inline Vec finite_abs(Vec x) {
  const Vec a = x.abs();
  return a & (a <= Vec(kFltMax));
}

// core::m_scale_part per lane: |m| where m and v are finite, else 0.
inline Vec m_scale_part(Vec m, Vec v) {
  const Vec a = m.abs();
  return a & ((a <= Vec(kFltMax)) & (v.abs() <= Vec(kFltMax)));
}

inline float reduce_max(Vec v) {
  alignas(64) float lanes[kN];
  v.store(lanes);
  float r = 0.0f;
  for (int k = 0; k < kN; ++k) r = std::max(r, lanes[k]);
  return r;
}

// core::normalize_by_scale per lane for a scale > 0: x / scale, 0 for NaN x. (An AND with the
// mask, not a blend: GCC turns the blend into a zero-masked vdivps, which runs several times
// slower on AVX-512.)
inline Vec normalize(Vec x, Vec scale) { return (x / scale) & (x == x); }

// The same with per-lane scales that may be 0.
inline Vec normalize_any(Vec x, Vec scale) { return (x / scale) & ((x == x) & (scale > Vec(0.0f))); }

// ---- one block ---------------------------------------------------------------------------------

// The block's rank-1 scales min(row max, column max) from stats (rows row maxima, then columns).
void fill_rank1_scales(const float* stats, int64_t rows, int64_t cols, int64_t begin, int64_t len, float* out) {
  int64_t k = 0;
  while (k < len) {
    const int64_t e = begin + k, i = e / cols, j = e % cols, n = std::min(len - k, cols - j);
    const Vec r(stats[i]);
    const float* c = stats + rows + j;
    int64_t u = 0;
    for (; u + kN <= n; u += kN) min_not_nan(r, Vec::loadu(c + u)).store(out + k + u);
    for (; u < n; ++u) out[k + u] = core::rank1_scale(stats[i], c[u]);
    k += n;
  }
}

// Decodes len 8-bit codes with one scale (core::decode_with_map).
void decode_codes(const float* table, const uint8_t* codes, float scale, int64_t len, float* out) {
  const Vec s(scale);
  int64_t k = 0;
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

// Encodes len values with a map: out[k] = nearest code of normalize(x[k], scale).
void encode_map(const LookupView& lk, const core::QuantMap& map, const float* x, float scale, int64_t len,
                uint8_t* out) {
  if (!(scale > 0.0f)) {
    std::memset(out, lk.zero_index, len);
    return;
  }
  const Vec s(scale);
  int64_t k = 0;
  for (; k + kN <= len; k += kN) store_bytes(lookup_index(lk, normalize(Vec::loadu(x + k), s)), out + k);
  for (; k < len; ++k) out[k] = core::encode_with_map(map.values, map.size, x[k], scale);
}

// The same for a 16-entry map as packed nibbles from even element `begin`, with one scale or
// per-element scales.
void encode_map_nibbles(const Search16& search, const core::QuantMap& map, const float* x, const float* scales,
                        float scale, int64_t begin, int64_t len, uint8_t* bytes) {
  int64_t k = 0;
  for (; k + kN <= len; k += kN) {
    const Vec xv = Vec::loadu(x + k);
    const Vec q = scales ? normalize_any(xv, Vec::loadu(scales + k))
                         : (scale > 0.0f ? normalize(xv, Vec(scale)) : Vec(0.0f));
    store_nibbles(search_index16(search, q), bytes + (begin + k) / 2);
  }
  for (; k < len; k += 2) {
    uint8_t code[2] = {0, 0};
    for (int64_t h = 0; h < 2 && k + h < len; ++h)
      code[h] = core::encode_with_map(map.values, map.size, x[k + h], scales ? scales[k + h] : scale);
    bytes[(begin + k) / 2] = core::pack_nibbles(code[0], code[1]);
  }
}

void encode_fp8(const float* x, float scale, int64_t len, uint8_t* out) {
  const Vec s(scale), lo(-core::kE4M3Max), hi(core::kE4M3Max);
  const bool zero = !(scale > 0.0f);
  int64_t k = 0;
  for (; k + kN <= len; k += kN) {
    const Vec xv = Vec::loadu(x + k);
    // NaN lanes give a NaN q; at::vec::clamp keeps it, and store_e4m3 replaces it.
    const Vec q = zero ? Vec(0.0f) : at::vec::clamp(xv / s, lo, hi);
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
                const float* new_stats, Scratch& s) {
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
    decode_codes(tb.map8_m->values, mc + begin, t.m_scale[block], len, m);
    decode_codes(tb.map8_v->values, vc + begin, t.v_scale[block], len, v);
  } else if constexpr (L == StateLayout::kFp8) {
    decode_fp8(tb.e4m3, mc + begin, t.m_scale[block], len, m);
    decode_fp8(tb.e4m3, vc + begin, t.v_scale[block], len, v);
  } else {
    decode_nibbles(tb.map4_m->values, mc, begin, nullptr, t.m_scale[block], len, m);
    if constexpr (L == StateLayout::k4bitRank1) {
      fill_rank1_scales(t.v_scale, t.rows, t.cols, begin, len, s.s_old);
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
      fill_rank1_scales(new_stats, t.rows, t.cols, begin, len, s.s_new);
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
std::unique_ptr<float[]> rank1_statistics(const ParamSlot& t, const KernelTables& tb) {
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
    std::unique_ptr<float[]> g(new float[cols]), scale(new float[cols]);
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
        fill_rank1_scales(t.v_scale, rows, cols, e0, cols, scale.get());
        Vec rm(0.0f);
        int64_t j = 0;
        for (; j + kN <= cols; j += kN) {
          const Vec code_value = even ? gather_nibbles(table, vc + (e0 + j) / 2) : gather_codes(table, codes.get() + j);
          const Vec old = code_value * Vec::loadu(scale.get() + j);
          const Vec gj = Vec::loadu(gf + j);
          const Vec nv = finite_abs(b2 * old + (omb2 * gj) * gj);  // core::adamw_second_moment
          rm = max_not_nan(rm, nv);
          max_not_nan(Vec::loadu(cm + j), nv).store(cm + j);
        }
        float r = reduce_max(rm);
        for (; j < cols; ++j) {
          const float old = core::mul_rn(table[core::nibble(vc[(e0 + j) / 2], e0 + j)], scale[j]);
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
  const KernelTables& tb = kernel_tables();
  std::unique_ptr<float[]> new_stats;
  if constexpr (L == core::StateLayout::k4bitRank1) new_stats = rank1_statistics<P>(t, tb);
  const int64_t blocks = core::num_blocks(t.numel, block_size);
  const int64_t grain = std::max<int64_t>(1, 32768 / block_size);
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    auto scratch = std::make_unique<Scratch>();
    for (int64_t b = b0; b < b1; ++b) step_block<L, P>(t, tb, b, block_size, sr, new_stats.get(), *scratch);
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

void step_vectorized(const ParamSlot& t, int64_t block_size, bool stochastic_round) {
  if (t.numel == 0) return;
  if (t.is_bf16) {
    step_typed<c10::BFloat16>(t, block_size, stochastic_round);
  } else {
    step_typed<float>(t, block_size, stochastic_round);
  }
}

}  // namespace
}  // namespace lowbit::cpu::adamw
