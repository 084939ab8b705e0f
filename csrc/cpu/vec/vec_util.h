// Helpers of the vectorized CPU kernels (included only by csrc/cpu/vec/*.cpp, which are compiled
// once per instruction set): float32 chunks of a float32 / bfloat16 / float16 array, exact
// conversions both ways, and the reductions the kernels share.
//
// How the kernels vectorize: the conversions and the reductions (amax, min / max) use
// at::vec::Vectorized; the element-wise maps are plain loops over a float32 chunk that call the
// per-element functions of csrc/core, which are written without branches so the compiler
// vectorizes them for this build's instruction set (16 lanes under AVX512). Same functions as the
// reference, so the same bits.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <lowbit/core/affine_quant.h>
#include <lowbit/core/float8_format.h>
#include <lowbit/cpu/vec/kernels.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {

using Vec = at::vec::Vectorized<float>;

// Elements converted to float32 at a time: 2 KiB of floats, which stay in L1.
constexpr int64_t kChunk = 512;
// parallel_for grain for element-wise passes.
constexpr int64_t kGrain = 1 << 15;

// x[0, n) (n <= kChunk) as float32 in buf; exact.
template <typename T>
inline void load_floats(const T* x, int64_t n, float* buf) {
  if constexpr (std::is_same_v<T, float>) {
    std::memcpy(buf, x, n * sizeof(float));
  } else {
    int64_t i = 0;
    for (; i + Vec::size() <= n; i += Vec::size()) {
      Vec v;
      at::vec::load_to_float(x + i, v);
      v.store(buf + i);
    }
    for (; i < n; ++i) buf[i] = static_cast<float>(x[i]);
  }
}

// buf[0, n) rounded to nearest even into y (T = float32 copies).
template <typename T>
inline void store_floats(const float* buf, int64_t n, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    std::memcpy(y, buf, n * sizeof(float));
  } else {
    using VecT = at::vec::Vectorized<T>;
    int64_t i = 0;
    for (; i + VecT::size() <= n; i += VecT::size()) {
      at::vec::convert_from_float<T>(Vec::loadu(buf + i), Vec::loadu(buf + i + Vec::size())).store(y + i);
    }
    for (; i < n; ++i) y[i] = static_cast<T>(buf[i]);
  }
}

// f(chunk, offset, len) over x[0, n) in float32 chunks of at most kChunk elements (float32
// input is passed through without a copy).
template <typename T, typename F>
inline void for_float_chunks(const T* x, int64_t n, F&& f) {
  alignas(64) float buf[kChunk];
  for (int64_t off = 0; off < n; off += kChunk) {
    const int64_t len = std::min(kChunk, n - off);
    if constexpr (std::is_same_v<T, float>) {
      f(x + off, off, len);
    } else {
      load_floats(x + off, len, buf);
      f(static_cast<const float*>(buf), off, len);
    }
  }
}

// Calls f(T()) for the element type of a float32 / bfloat16 / float16 array.
template <typename F>
inline void visit_float_dtype(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kFloat: f(float()); break;
    case at::kBFloat16: f(c10::BFloat16()); break;
    case at::kHalf: f(c10::Half()); break;
    default: TORCH_CHECK(false, "lowbit vectorized CPU kernel: unexpected dtype ", t);
  }
}

#if defined(CPU_CAPABILITY_AVX512)
// Whether this CPU has AVX-512 VBMI (byte permutes, vpmultishiftqb). The AVX512 set needs only F,
// BW, VL and DQ; its kernels that use VBMI check this at run time and keep a path without it.
inline bool cpu_has_vbmi() {
  static const bool has = __builtin_cpu_supports("avx512vbmi");
  return has;
}
#endif

// max / min for lanes that are not NaN (at::vec::maximum spends three more operations on NaN).
inline Vec max_not_nan(Vec a, Vec b) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_max_ps(a, b);
#elif defined(CPU_CAPABILITY_AVX2)
  return _mm256_max_ps(a, b);
#else
  return at::vec::maximum(a, b);
#endif
}

inline Vec min_not_nan(Vec a, Vec b) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_min_ps(a, b);
#elif defined(CPU_CAPABILITY_AVX2)
  return _mm256_min_ps(a, b);
#else
  return at::vec::minimum(a, b);
#endif
}

// |x| where x is finite, else 0, per lane (core::finite_abs). AVX-512 keeps the finiteness test
// in a mask register (vfpclassps, then a zero-masked AND): at::vec's comparison there returns a
// vector, and its compare + mask-to-vector move + AND or blend took 25% of the fp8 optimizer
// step (the moves compete with divisions and square roots for one port).
inline Vec finite_abs(Vec x) {
#if defined(CPU_CAPABILITY_AVX512)
  const __mmask16 non_finite = _mm512_fpclass_ps_mask(x, 0x99);  // QNaN, +inf, -inf, SNaN
  return _mm512_maskz_and_ps(static_cast<__mmask16>(~non_finite), x,
                             _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF)));
#else
  const Vec a = x.abs();
  return a & (a <= Vec(core::kFloat32Max));
#endif
}

// max over x[0, n) of core::float8_amax_term (|x| of finite values, 0 otherwise); exact.
inline float finite_amax(const float* x, int64_t n) {
  Vec acc(0.0f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    acc = max_not_nan(acc, finite_abs(Vec::loadu(x + i)));
  }
  alignas(64) float lanes[Vec::size()];
  acc.store(lanes);
  float m = 0.0f;
  for (int j = 0; j < Vec::size(); ++j) m = std::max(m, lanes[j]);
  for (; i < n; ++i) m = std::max(m, core::float8_amax_term(x[i]));
  return m;
}

// The affine min / max of a block (core::affine_min_term / affine_max_term), split into the
// finite min, finite max and a NaN flag so partial results combine exactly in any order.
struct MinMax {
  float mn = INFINITY, mx = -INFINITY;
  bool nan = false;
  void add(const MinMax& o) {
    mn = std::min(mn, o.mn);
    mx = std::max(mx, o.mx);
    nan = nan || o.nan;
  }
  // The (mn, mx) pair core::affine_qparams_from_min_max takes: a NaN block has the canonical NaN max.
  float max_for_qparams() const { return nan ? core::float_of(0x7fc00000u) : mx; }
};

inline MinMax affine_minmax(const float* x, int64_t n) {
  Vec vmn(INFINITY), vmx(-INFINITY), vnan(0.0f);
  int64_t i = 0;
#if defined(CPU_CAPABILITY_AVX512)
  __mmask16 any_nan = 0;  // mask registers, as in finite_abs
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const __m512 v = Vec::loadu(x + i);
    const __mmask16 finite = static_cast<__mmask16>(~_mm512_fpclass_ps_mask(v, 0x99));
    vmn = _mm512_mask_min_ps(vmn, finite, vmn, v);
    vmx = _mm512_mask_max_ps(vmx, finite, vmx, v);
    any_nan |= _mm512_fpclass_ps_mask(v, 0x81);
  }
  if (any_nan) vnan = Vec(core::float_of(0xFFFFFFFFu));
#else
  const Vec big(core::kFloat32Max), pinf(INFINITY), ninf(-INFINITY);
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec v = Vec::loadu(x + i);
    const Vec finite = v.abs() <= big;
    vmn = min_not_nan(vmn, Vec::blendv(pinf, v, finite));
    vmx = max_not_nan(vmx, Vec::blendv(ninf, v, finite));
    vnan = vnan | v.isnan();
  }
#endif
  alignas(64) float a[Vec::size()], b[Vec::size()], c[Vec::size()];
  vmn.store(a);
  vmx.store(b);
  vnan.store(c);
  MinMax m;
  for (int j = 0; j < Vec::size(); ++j) {
    m.mn = std::min(m.mn, a[j]);
    m.mx = std::max(m.mx, b[j]);
    m.nan = m.nan || core::bits_of(c[j]) != 0;
  }
  for (; i < n; ++i) {
    const float v = x[i];
    m.mn = std::min(m.mn, core::affine_min_term(v));
    m.mx = std::max(m.mx, std::fabs(v) <= core::kFloat32Max ? v : -INFINITY);
    m.nan = m.nan || v != v;
  }
  return m;
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
