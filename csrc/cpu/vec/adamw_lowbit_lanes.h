// The lane-level steps of the vectorized AdamW kernel (csrc/cpu/vec/adamw_lowbit.cpp), kN lanes at
// a time, for the instruction set this build of it is compiled for (CPU_CAPABILITY): gathers from the code tables,
// nibble unpacking and packing, the map searches (map_lookup.h), c10's float <-> e4m3 rounding in
// integer lanes, narrowing to bytes. Intrinsics where at::vec has no operation for the step; the
// DEFAULT build does each lane with the scalar function. Every function here equals, lane by lane,
// the scalar function named in its comment (tests/cpp/test_optim_kernels.cpp).
#pragma once

#include <ATen/cpu/vec/vec.h>
#include <c10/util/Float8_e4m3fn.h>

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <lowbit/core/optimizer_state_formats.h>
#include <lowbit/cpu/adamw_lowbit_tables.h>
#include <lowbit/cpu/vec/vec_util.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

using adamw::LookupView;
using adamw::Search16;

using Vec = at::vec::Vectorized<float>;
constexpr int kN = Vec::size();

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

inline float reduce_max(Vec v) {
  alignas(64) float lanes[kN];
  v.store(lanes);
  float r = 0.0f;
  for (int k = 0; k < kN; ++k) r = std::max(r, lanes[k]);
  return r;
}

// The masked steps below take AVX-512 mask registers, as vec_util.h's finite_abs does (why there).
#if defined(CPU_CAPABILITY_AVX512)

// core::m_scale_part per lane: |m| where m and v are finite, else 0.
inline Vec m_scale_part(Vec m, Vec v) {
  const __mmask16 non_finite = _mm512_fpclass_ps_mask(m, 0x99) | _mm512_fpclass_ps_mask(v, 0x99);
  return _mm512_maskz_and_ps(static_cast<__mmask16>(~non_finite), m, _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF)));
}

// core::normalize_by_reciprocal per lane for a finite reciprocal (a scale > 0): x * reciprocal,
// 0 for NaN x.
inline Vec normalize(Vec x, Vec reciprocal) {
  return _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(x, x, _CMP_ORD_Q), x, reciprocal);
}

// The same with per-lane reciprocals that may be +inf (a zero scale).
inline Vec normalize_any(Vec x, Vec reciprocal) {
  const __mmask16 ok = _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q) &
                       _mm512_cmp_ps_mask(reciprocal, _mm512_set1_ps(core::kFloat32Max), _CMP_LE_OQ);
  return _mm512_maskz_mul_ps(ok, x, reciprocal);
}

#else

inline Vec m_scale_part(Vec m, Vec v) {
  const Vec a = m.abs();
  return a & ((a <= Vec(core::kFloat32Max)) & (v.abs() <= Vec(core::kFloat32Max)));
}

inline Vec normalize(Vec x, Vec reciprocal) { return (x * reciprocal) & (x == x); }

inline Vec normalize_any(Vec x, Vec reciprocal) {
  return (x * reciprocal) & ((x == x) & (reciprocal <= Vec(core::kFloat32Max)));
}

#endif

}  // namespace
}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
