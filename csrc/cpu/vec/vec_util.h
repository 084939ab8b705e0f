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

// max over x[0, n) of core::float8_amax_term (|x| of finite values, 0 otherwise); exact.
inline float finite_amax(const float* x, int64_t n) {
  const Vec big(core::kFloat32Max), zero(0.0f);
  Vec acc(0.0f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec a = Vec::loadu(x + i).abs();
    acc = at::vec::maximum(acc, Vec::blendv(zero, a, a <= big));
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
  const Vec big(core::kFloat32Max), pinf(INFINITY), ninf(-INFINITY);
  Vec vmn(INFINITY), vmx(-INFINITY), vnan(0.0f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec v = Vec::loadu(x + i);
    const Vec finite = v.abs() <= big;
    vmn = at::vec::minimum(vmn, Vec::blendv(pinf, v, finite));
    vmx = at::vec::maximum(vmx, Vec::blendv(ninf, v, finite));
    vnan = vnan | v.isnan();
  }
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
