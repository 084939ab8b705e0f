// Lane-level steps of the quantized linears' CPU kernels (qlinear_weight_only.cpp,
// qlinear_int8.cpp) for the instruction set of this build (AVX2 or AVX512; cmake/LowbitCpuKernels.cmake
// compiles csrc/cpu/vec/*.cpp once per set, and the DEFAULT build has no qlinear kernels). Float math uses at::vec::Vectorized<float>;
// what at::vec lacks (bit-field extraction, in-register table lookups, byte widening) is here,
// one small function per step, each equal to the scalar rule it replaces:
//   codes      the 32 codes of a chunk (core::chunk_code for each j), kVecs vectors of kLanes
//   lookup     table[code] for a table of 2^bits floats held in registers
//   widen      int8 / float8 bytes -> float32, exactly (c10's float8 -> float conversion)
//   round_to   float32 -> bfloat16 / half -> float32 (round to nearest even; what .to(dtype) does)
// Everything has internal linkage, so no copy of it can be shared with another build's objects.
#pragma once

#if !defined(CPU_CAPABILITY_AVX512) && !defined(CPU_CAPABILITY_AVX2)
#error "qlinear_lanes.h is for the AVX2 / AVX512 builds of csrc/cpu/vec only"
#endif

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_* through their masked builtins, which
// -Wuninitialized reports once they are inlined here (a false positive, as in ATen's own builds).
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <immintrin.h>

#include <cstdint>

#include <lowbit/cpu/vec/qlinear.h>

// Forced inlining of the per-chunk steps: out of line, GCC passes the decoded vectors through
// memory, which costs more than the decoding.
#define LOWBIT_QL_INLINE inline __attribute__((always_inline))

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

using FVec = at::vec::Vectorized<float>;
constexpr int kLanes = FVec::size();
constexpr int kVecs = static_cast<int>(kCodeChunk) / kLanes;  // float vectors per chunk of 32 codes

#if defined(CPU_CAPABILITY_AVX512)
static_assert(kLanes == 16, "AVX-512 float vectors hold 16 lanes");
using IVec = __m512i;

LOWBIT_QL_INLINE IVec iota_i32() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
LOWBIT_QL_INLINE IVec set1_i32(int v) { return _mm512_set1_epi32(v); }
LOWBIT_QL_INLINE IVec add_i32(IVec a, IVec b) { return _mm512_add_epi32(a, b); }
LOWBIT_QL_INLINE FVec to_float(IVec a) { return FVec(_mm512_cvtepi32_ps(a)); }
#else
static_assert(kLanes == 8, "AVX2 float vectors hold 8 lanes");
using IVec = __m256i;

LOWBIT_QL_INLINE IVec iota_i32() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
LOWBIT_QL_INLINE IVec set1_i32(int v) { return _mm256_set1_epi32(v); }
LOWBIT_QL_INLINE IVec add_i32(IVec a, IVec b) { return _mm256_add_epi32(a, b); }
LOWBIT_QL_INLINE IVec srli_i32(IVec a, int s) { return _mm256_srli_epi32(a, s); }
LOWBIT_QL_INLINE IVec and_i32(IVec a, IVec b) { return _mm256_and_si256(a, b); }
LOWBIT_QL_INLINE IVec sub_i32(IVec a, IVec b) { return _mm256_sub_epi32(a, b); }
LOWBIT_QL_INLINE IVec mul_i32(IVec a, int b) { return _mm256_mullo_epi32(a, _mm256_set1_epi32(b)); }
LOWBIT_QL_INLINE FVec to_float(IVec a) { return FVec(_mm256_cvtepi32_ps(a)); }
#endif

// ---- codes: a chunk's `bits` words -> its 32 codes ----------------------------------------------

// Code j of a chunk starts at stream bit j * bits: bit (j * bits) % 8 of byte (j * bits) / 8, and
// (bits <= 8) it ends within the next byte (core::chunk_code). The plan holds, per lane, where each
// code's bytes are and how far to shift them, so a chunk costs a few shuffles and shifts, no branch.
//   AVX-512: all 32 codes in the 16-bit lanes of one register, then widened. Codes 8L..8L+7 lie in
//     the bytes from L * bits, within the 16 bytes from qword (L * bits) / 8: one qword permute
//     gives 128-bit lane L those bytes, one in-lane byte shuffle puts each code's two bytes in its
//     16-bit lane, one variable shift and a mask leave the code (8 instructions per chunk where
//     32-bit lanes took 11).
//   AVX2: per vector of 8 codes, the two 32-bit words a code may span are permuted into its lane,
//     shifted and or-ed.
struct CodePlan {
#if defined(CPU_CAPABILITY_AVX512)
  __m512i qwords, byte_pairs, shifts, mask16;
  __mmask32 load_mask;

  explicit CodePlan(int b) {
    alignas(64) int64_t q[8];
    alignas(64) uint8_t pairs[64];
    alignas(64) uint16_t shift[32];
    for (int l = 0; l < 4; ++l) {
      q[2 * l] = l * b / 8;
      q[2 * l + 1] = l * b / 8 + 1;  // past the chunk for 8 bits: zeros, masked off
    }
    for (int j = 0; j < 32; ++j) {
      const int first_bit = j * b, in_lane = first_bit / 8 - 8 * static_cast<int>(q[2 * (j / 8)]);
      pairs[2 * j] = static_cast<uint8_t>(in_lane);
      pairs[2 * j + 1] = static_cast<uint8_t>(in_lane + 1);
      shift[j] = static_cast<uint16_t>(first_bit % 8);
    }
    qwords = _mm512_load_si512(q);
    byte_pairs = _mm512_load_si512(pairs);
    shifts = _mm512_load_si512(shift);
    mask16 = _mm512_set1_epi16(static_cast<int16_t>((1 << b) - 1));
    load_mask = b >= 8 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (4 * b)) - 1u);
  }

  // The chunk at `p` (its 4 * bits bytes).
  LOWBIT_QL_INLINE void codes(const uint8_t* p, IVec (&out)[kVecs]) const {
    const __m256i bytes = _mm256_maskz_loadu_epi8(load_mask, p);
    const __m512i lanes = _mm512_permutexvar_epi64(qwords, _mm512_zextsi256_si512(bytes));
    const __m512i c = _mm512_and_si512(_mm512_srlv_epi16(_mm512_shuffle_epi8(lanes, byte_pairs), shifts), mask16);
    out[0] = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(c));
    out[1] = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(c, 1));
  }
#else
  int bits;
  IVec lo_word[kVecs], hi_word[kVecs], right[kVecs], left[kVecs], mask;

  explicit CodePlan(int b) : bits(b) {
    for (int h = 0; h < kVecs; ++h) {
      const IVec first_bit = mul_i32(add_i32(iota_i32(), set1_i32(h * kLanes)), b);
      lo_word[h] = srli_i32(first_bit, 5);
      hi_word[h] = add_i32(lo_word[h], set1_i32(1));
      right[h] = and_i32(first_bit, set1_i32(31));
      left[h] = sub_i32(set1_i32(32), right[h]);  // 32 when aligned: the shift yields 0
    }
    mask = set1_i32((1 << b) - 1);
  }

  // The chunk at `p` (its `bits` little-endian words; x86 loads them in stream order).
  LOWBIT_QL_INLINE void codes(const uint8_t* p, IVec (&out)[kVecs]) const {
    const IVec lanes_used = _mm256_cmpgt_epi32(_mm256_set1_epi32(bits), iota_i32());
    const IVec words = bits == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                 : _mm256_maskload_epi32(reinterpret_cast<const int*>(p), lanes_used);
    for (int h = 0; h < kVecs; ++h) {
      const IVec lo = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(words, lo_word[h]), right[h]);
      const IVec hi = _mm256_sllv_epi32(_mm256_permutevar8x32_epi32(words, hi_word[h]), left[h]);
      out[h] = _mm256_and_si256(_mm256_or_si256(lo, hi), mask);
    }
  }
#endif
};

// ---- lookup: table[code] for 2^bits floats held in registers ------------------------------------

// kEntries = 16, 32, 64 or 128 on AVX-512 (permutes of 16-float registers, blends on the high code
// bits); 8, 16 or a gather on AVX2.
template <int kEntries>
struct Table {
  static constexpr int kRegs = kEntries / kLanes > 0 ? kEntries / kLanes : 1;
  FVec t[kRegs];
  const float* mem = nullptr;  // the same values in memory (the AVX2 gather)

  LOWBIT_QL_INLINE FVec operator()(IVec c) const {
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (kEntries <= 16) {
      return _mm512_permutexvar_ps(c, t[0]);
    } else if constexpr (kEntries == 32) {
      return _mm512_permutex2var_ps(t[0], c, t[1]);
    } else if constexpr (kEntries == 64) {
      const __mmask16 upper = _mm512_test_epi32_mask(c, _mm512_set1_epi32(32));
      return _mm512_mask_blend_ps(upper, _mm512_permutex2var_ps(t[0], c, t[1]), _mm512_permutex2var_ps(t[2], c, t[3]));
    } else {
      static_assert(kEntries == 128, "tables of 16, 32, 64 or 128 floats");
      const __mmask16 b5 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(32));
      const __mmask16 b6 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(64));
      const __m512 lo = _mm512_mask_blend_ps(b5, _mm512_permutex2var_ps(t[0], c, t[1]),
                                             _mm512_permutex2var_ps(t[2], c, t[3]));
      const __m512 hi = _mm512_mask_blend_ps(b5, _mm512_permutex2var_ps(t[4], c, t[5]),
                                             _mm512_permutex2var_ps(t[6], c, t[7]));
      return _mm512_mask_blend_ps(b6, lo, hi);
    }
#else
    if constexpr (kEntries <= 8) {
      return _mm256_permutevar8x32_ps(t[0], c);
    } else if constexpr (kEntries == 16) {
      const __m256 upper = _mm256_castsi256_ps(_mm256_slli_epi32(c, 28));  // bit 3 -> sign
      return _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[0], c), _mm256_permutevar8x32_ps(t[1], c), upper);
    } else {
      return _mm256_i32gather_ps(mem, c, 4);
    }
#endif
  }
};

// ---- widen: bytes -> float32 ----------------------------------------------------------------------

// A chunk's kCodeChunk int8 values -> float, exactly. AVX-512: one 32-byte load whose halves widen
// from registers.
LOWBIT_QL_INLINE void widen_int8_chunk(const uint8_t* p, FVec (&out)[kVecs]) {
#if defined(CPU_CAPABILITY_AVX512)
  const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  out[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(codes)));
  out[1] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(codes, 1)));
#else
  for (int h = 0; h < kVecs; ++h)
    out[h] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + h * kLanes))));
#endif
}

// kLanes float8 codes -> float, exactly as c10's conversions: e5m2 is the high byte of a half
// (inf and NaN included); e4m3fn's magnitude bits placed as a half's are the value / 2^8 for
// normal and subnormal codes alike (the exponent biases differ by 8), and its one NaN code per
// sign (magnitude 0x7f) becomes NaN.
// `daz` (widen_float8_chunk): this thread's MXCSR treats denormal inputs as zero
// (torch.set_flush_denormal(True)); the AVX-512 e4m3 route there multiplies denormal float32 bit
// patterns, so it then takes this half route.
LOWBIT_QL_INLINE bool denormals_are_zero() { return (_mm_getcsr() & 0x0040u) != 0; }

#if defined(CPU_CAPABILITY_AVX512)
// 16 e4m3 codes (sign-extended to 32 bits) -> float, exactly, for every code but the NaN ones
// (magnitude 0x7f, left to the caller). Four instructions where the half route takes ten: shifted
// left by 20, the code has its sign in bit 31 (and copies of it in 30..27, masked off) and its 7
// magnitude bits in float32's exponent / mantissa bits 26..20; that float is the e4m3 value times
// 2^-120 for normal and subnormal codes alike (a denormal float32 for the latter: not under DAZ),
// so one multiply by 2^120 gives it exactly.
LOWBIT_QL_INLINE __m512 e4m3_to_float_but_nan(__m512i s) {
  const __m512i bits = _mm512_and_si512(_mm512_slli_epi32(s, 20), _mm512_set1_epi32(static_cast<int>(0x87f00000u)));
  return _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(0x1p120f));
}
#endif

template <bool kE4M3>
LOWBIT_QL_INLINE FVec widen_float8(const uint8_t* p) {
#if defined(CPU_CAPABILITY_AVX512)
  const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if constexpr (!kE4M3) {
    return _mm512_cvtph_ps(_mm256_slli_epi16(b, 8));
  } else {
    const __m256i mag = _mm256_and_si256(b, _mm256_set1_epi16(0x7f));
    const __m256i sign = _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x80)), 8);
    const __m256i half = _mm256_or_si256(_mm256_slli_epi16(mag, 7), sign);
    const __m512 v = _mm512_mul_ps(_mm512_cvtph_ps(half), _mm512_set1_ps(256.0f));
    const __mmask16 nan = _mm256_cmpeq_epi16_mask(mag, _mm256_set1_epi16(0x7f));
    return _mm512_mask_mov_ps(v, nan, _mm512_set1_ps(__builtin_nanf("")));
  }
#else
  const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  if constexpr (!kE4M3) {
    return _mm256_cvtph_ps(_mm_slli_epi16(b, 8));
  } else {
    const __m128i mag = _mm_and_si128(b, _mm_set1_epi16(0x7f));
    const __m128i sign = _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8);
    const __m128i half = _mm_or_si128(_mm_slli_epi16(mag, 7), sign);
    const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(half), _mm256_set1_ps(256.0f));
    const __m256 nan = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(_mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7f))));
    return _mm256_blendv_ps(v, _mm256_set1_ps(__builtin_nanf("")), nan);
  }
#endif
}

// A chunk's kCodeChunk float8 codes -> float, as widen_float8. The AVX-512 e4m3 route looks for
// NaN codes once per chunk (one byte compare of its 32 codes) and patches lanes only when it finds
// one, which a quantized weight never holds.
template <bool kE4M3>
LOWBIT_QL_INLINE void widen_float8_chunk(const uint8_t* p, bool daz, FVec (&out)[kVecs]) {
#if defined(CPU_CAPABILITY_AVX512)
  static_assert(kVecs == 2, "a chunk of 32 codes is two AVX-512 vectors");
  if constexpr (kE4M3) {
    if (!daz) {
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      out[0] = e4m3_to_float_but_nan(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(codes)));
      out[1] = e4m3_to_float_but_nan(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(codes, 1)));
      const __mmask32 nan = _mm256_cmpeq_epi8_mask(_mm256_and_si256(codes, _mm256_set1_epi8(0x7f)), _mm256_set1_epi8(0x7f));
      if (__builtin_expect(nan != 0, 0)) {
        out[0] = _mm512_mask_mov_ps(out[0], static_cast<__mmask16>(nan), _mm512_set1_ps(__builtin_nanf("")));
        out[1] = _mm512_mask_mov_ps(out[1], static_cast<__mmask16>(nan >> 16), _mm512_set1_ps(__builtin_nanf("")));
      }
      return;
    }
  }
#endif
  for (int h = 0; h < kVecs; ++h) out[h] = widen_float8<kE4M3>(p + h * kLanes);
}

// ---- round_to: float32 -> dtype -> float32 ----------------------------------------------------------

// v rounded to bfloat16 / half and back to float32, in the register: round to nearest even, as
// c10's conversions and aten's .to(dtype) round (bfloat16: add 0x7fff plus the kept part's lowest
// bit and drop the low 16 bits; NaN stays NaN; half: the F16C conversion, which rounds to nearest
// even with overflow to inf and subnormal halves).
LOWBIT_QL_INLINE FVec round_to(QRound r, FVec v) {
#if defined(CPU_CAPABILITY_AVX512)
  if (r == QRound::kBFloat16) {
    const __m512i b = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    const __m512i t = _mm512_and_si512(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))),
                                       _mm512_set1_epi32(static_cast<int>(0xffff0000u)));
    return _mm512_mask_mov_ps(_mm512_castsi512_ps(t), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
  }
  if (r == QRound::kHalf) return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
  if (r == QRound::kBFloat16) {
    const __m256i b = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    const __m256i t = _mm256_and_si256(_mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))),
                                       _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
    return _mm256_blendv_ps(_mm256_castsi256_ps(t), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (r == QRound::kHalf) return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  return v;
}

LOWBIT_QL_INLINE void round_to(QRound r, FVec& a, FVec& b) {
  a = round_to(r, a);
  b = round_to(r, b);
}

LOWBIT_QL_INLINE float reduce_add(const FVec& v) {
  return at::vec::vec_reduce_all<float>([](const FVec& a, const FVec& b) { return a + b; }, v);
}

}  // namespace
}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
