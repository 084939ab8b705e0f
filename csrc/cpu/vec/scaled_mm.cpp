// Vectorized pieces of lowbit::scaled_mm's float32 emulation on the CPU (reference:
// csrc/cpu/scaled_mm_reference.h, ATen ops): the float8 -> float32 conversion of the operands
// (a lookup in a 256-entry table of c10's exact conversions) and the fused epilogue, one pass over
// the accumulator instead of ATen's three (two scale multiplies and the bias add) plus the cast.
#include <lowbit/cpu/vec/vec_util.h>

#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e5m2.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

template <typename T>
void epilogue(const float* acc, int64_t m, int64_t n, const float* sa, int64_t sa_stride, const float* sb,
              int64_t sb_stride, const float* bias, T* out) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1));
  at::parallel_for(0, m, grain, [&](int64_t b, int64_t e) {
    alignas(64) float buf[kChunk];
    for (int64_t r = b; r < e; ++r) {
      const float s = sa[r * sa_stride];
      const float* row = acc + r * n;
      for (int64_t off = 0; off < n; off += kChunk) {
        const int64_t len = std::min(kChunk, n - off);
        const float* sbo = sb + off * sb_stride;
        if (sb_stride == 0) {
          const float t = sb[0];
          for (int64_t i = 0; i < len; ++i) buf[i] = (row[off + i] * s) * t;
        } else {
          for (int64_t i = 0; i < len; ++i) buf[i] = (row[off + i] * s) * sbo[i];
        }
        if (bias != nullptr) {
          for (int64_t i = 0; i < len; ++i) buf[i] = buf[i] + bias[off + i];
        }
        store_floats(buf, len, out + r * n + off);
      }
    }
  });
}

}  // namespace

void float8_to_float(const uint8_t* bits, int64_t n, bool e5m2, float* out) {
  float table[256];
  for (int c = 0; c < 256; ++c) {
    const auto u = static_cast<uint8_t>(c);
    table[c] = e5m2 ? static_cast<float>(c10::Float8_e5m2(u, c10::Float8_e5m2::from_bits()))
                    : static_cast<float>(c10::Float8_e4m3fn(u, c10::Float8_e4m3fn::from_bits()));
  }
  at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = table[bits[i]];
  });
}

void scaled_mm_epilogue(const float* acc, int64_t m, int64_t n, const float* scale_a, int64_t scale_a_stride,
                        const float* scale_b, int64_t scale_b_stride, const float* bias, void* out,
                        at::ScalarType out_dtype) {
  visit_float_dtype(out_dtype, [&](auto tag) {
    epilogue(acc, m, n, scale_a, scale_a_stride, scale_b, scale_b_stride, bias, static_cast<decltype(tag)*>(out));
  });
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
