// The int8 GEMM of int8_dynamic_activation_int8_linear on the CPU, for the AVX2 and AVX512 builds
// of csrc/cpu/vec (the DEFAULT build has none: the op then runs the reference, aten::_int_mm).
//
//   qlinear_int8_gemm  acc = xq @ w^T exactly in int32. Rows of x and of w both run along K, so
//                      the kernel takes inner products of row pairs in register tiles (up to 4
//                      rows of x by 4 rows of w):
//     AVX512 + VNNI  vpdpbusd multiplies unsigned by signed bytes, so the weight byte is flipped
//                    to w + 128 (unsigned) and 128 * sum_k x is subtracted at the end; int32 lanes
//                    wrap, and the true sum fits int32 for K < 2^17, so the result is exact.
//                    VNNI is checked at run time (AVX512F CPUs without it take the next path).
//     AVX512 / AVX2  bytes widened to int16 and multiplied in pairs (vpmaddwd); a pair sums to
//                    at most 2 * 128 * 128, no saturation.
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <algorithm>
#include <cstring>
#include <type_traits>

#include <lowbit/cpu/vec/qlinear_lanes.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

// Sum of a tile's int32 lanes, wrapping (the exact sum fits int32; partial sums may not).
inline uint32_t lane_sum(const IVec& v) {
  alignas(64) uint32_t lanes[sizeof(IVec) / 4];
  std::memcpy(lanes, &v, sizeof(IVec));
  uint32_t s = 0;
  for (uint32_t l : lanes) s += l;
  return s;
}

#if defined(CPU_CAPABILITY_AVX512)
constexpr int kMaxMB = 4;  // 16 accumulators + 4 weight vectors of 32 zmm registers

// out[m][j] = sum_k x[m][k] * w[j][k] for a kMB x kNB tile, 64 bytes of K per step. x rows are
// zero-padded to a multiple of 64 bytes; w rows end with a masked load (zeros, flipped to 128,
// times x = 0).
template <int kMB, int kNB>
__attribute__((target("avx512vnni"))) void int8_tile_vnni(const int8_t* x, int64_t xs, const int32_t* xsum,
                                                          const int8_t* w, int64_t k, int32_t* out, int64_t os) {
  __m512i acc[kMB][kNB];
  for (int m = 0; m < kMB; ++m)
    for (int j = 0; j < kNB; ++j) acc[m][j] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < k; i += 64) {
    const __mmask64 mask = k - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (k - i)) - 1;
    __m512i wv[kNB];
    for (int j = 0; j < kNB; ++j) wv[j] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, w + j * k + i), flip);
    for (int m = 0; m < kMB; ++m) {
      const __m512i xv = _mm512_loadu_si512(x + m * xs + i);
      for (int j = 0; j < kNB; ++j) acc[m][j] = _mm512_dpbusd_epi32(acc[m][j], wv[j], xv);
    }
  }
  for (int m = 0; m < kMB; ++m) {
    const uint32_t bias = 128u * static_cast<uint32_t>(xsum[m]);
    for (int j = 0; j < kNB; ++j) out[m * os + j] = static_cast<int32_t>(lane_sum(acc[m][j]) - bias);
  }
}

// The same with vpmaddwd on bytes widened to int16, 32 bytes of K per step.
template <int kMB, int kNB>
void int8_tile_madd(const int8_t* x, int64_t xs, const int32_t*, const int8_t* w, int64_t k, int32_t* out,
                    int64_t os) {
  __m512i acc[kMB][kNB];
  for (int m = 0; m < kMB; ++m)
    for (int j = 0; j < kNB; ++j) acc[m][j] = _mm512_setzero_si512();
  for (int64_t i = 0; i < k; i += 32) {
    const __mmask32 mask = k - i >= 32 ? ~__mmask32{0} : (__mmask32{1} << (k - i)) - 1;
    __m512i wv[kNB];
    for (int j = 0; j < kNB; ++j) wv[j] = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, w + j * k + i));
    for (int m = 0; m < kMB; ++m) {
      const __m512i xv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + m * xs + i)));
      for (int j = 0; j < kNB; ++j) acc[m][j] = _mm512_add_epi32(acc[m][j], _mm512_madd_epi16(xv, wv[j]));
    }
  }
  for (int m = 0; m < kMB; ++m)
    for (int j = 0; j < kNB; ++j) out[m * os + j] = static_cast<int32_t>(lane_sum(acc[m][j]));
}

bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has;
}
#else
constexpr int kMaxMB = 2;  // 8 accumulators + 4 weight vectors of 16 ymm registers

// vpmaddwd on bytes widened to int16, 16 bytes of K per step; the last partial step is scalar.
template <int kMB, int kNB>
void int8_tile_madd(const int8_t* x, int64_t xs, const int32_t*, const int8_t* w, int64_t k, int32_t* out,
                    int64_t os) {
  __m256i acc[kMB][kNB];
  for (int m = 0; m < kMB; ++m)
    for (int j = 0; j < kNB; ++j) acc[m][j] = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    __m256i wv[kNB];
    for (int j = 0; j < kNB; ++j)
      wv[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j * k + i)));
    for (int m = 0; m < kMB; ++m) {
      const __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + m * xs + i)));
      for (int j = 0; j < kNB; ++j) acc[m][j] = _mm256_add_epi32(acc[m][j], _mm256_madd_epi16(xv, wv[j]));
    }
  }
  for (int m = 0; m < kMB; ++m) {
    for (int j = 0; j < kNB; ++j) {
      uint32_t s = lane_sum(acc[m][j]);
      for (int64_t t = i; t < k; ++t) s += static_cast<uint32_t>(int32_t{x[m * xs + t]} * int32_t{w[j * k + t]});
      out[m * os + j] = static_cast<int32_t>(s);
    }
  }
}
#endif

template <int kNB, bool kVnni>
inline void tile_rows(const int8_t* xq, const int32_t* xsum, int64_t m0, int64_t m1, int64_t xs, const int8_t* w,
                      int64_t k, int32_t* acc, int64_t as) {
  auto tile = [&](auto mb, int64_t m) {
    constexpr int kMB = decltype(mb)::value;
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (kVnni) {
      int8_tile_vnni<kMB, kNB>(xq + m * xs, xs, xsum + m, w, k, acc + m * as, as);
      return;
    }
#endif
    int8_tile_madd<kMB, kNB>(xq + m * xs, xs, xsum + m, w, k, acc + m * as, as);
  };
  int64_t m = m0;
  for (; m + kMaxMB <= m1; m += kMaxMB) tile(std::integral_constant<int, kMaxMB>{}, m);
  for (; m < m1; ++m) tile(std::integral_constant<int, 1>{}, m);
}

template <bool kVnni>
void int8_gemm(const int8_t* xq, const int32_t* xsum, int64_t m_rows, int64_t xs, const int8_t* w, int64_t k,
               int64_t n0, int64_t n1, int32_t* acc, int64_t as) {
  // Panels of x rows that stay in L2 while the weight rows of [n0, n1) stream past, four at a time.
  const int64_t panel = std::max<int64_t>(kMaxMB, ((int64_t{512} << 10) / std::max<int64_t>(xs, 1)) / 4 * 4);
  for (int64_t p0 = 0; p0 < m_rows; p0 += panel) {
    const int64_t p1 = std::min(m_rows, p0 + panel);
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) tile_rows<4, kVnni>(xq, xsum, p0, p1, xs, w + j * k, k, acc + j, as);
    for (; j < n1; ++j) tile_rows<1, kVnni>(xq, xsum, p0, p1, xs, w + j * k, k, acc + j, as);
  }
}

}  // namespace

void qlinear_int8_gemm(const int8_t* xq, const int32_t* xsum, int64_t m_rows, int64_t xq_stride, const int8_t* w,
                       int64_t k, int64_t n0, int64_t n1, int32_t* acc, int64_t acc_stride) {
#if defined(CPU_CAPABILITY_AVX512)
  if (cpu_has_vnni()) return int8_gemm<true>(xq, xsum, m_rows, xq_stride, w, k, n0, n1, acc, acc_stride);
#endif
  int8_gemm<false>(xq, xsum, m_rows, xq_stride, w, k, n0, n1, acc, acc_stride);
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
#endif
