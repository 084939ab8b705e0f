// Vectorized CPU kernels of lowbit::fpx_encode / fpx_decode (reference: csrc/cpu/fpx.cpp).
// Encode: core::fpx_encode_value over float32 chunks (branch-free, so the loop vectorizes).
// Decode: a table of the format's at most 256 values, built with core::fpx_decode_value and
// rounded once to the output dtype (as the reference's float32-then-convert), then a lookup.
#include <lowbit/cpu/vec/vec_util.h>

#include <lowbit/core/fpx_format.h>

#include <atomic>
#include <limits>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

template <typename T>
void encode(const T* x, int64_t n, int ebits, int mbits, uint8_t* codes) {
  at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for_float_chunks(x + b, e - b, [&](const float* c, int64_t off, int64_t len) {
      uint8_t* out = codes + b + off;
      for (int64_t i = 0; i < len; ++i) out[i] = core::fpx_encode_value(c[i], ebits, mbits);
    });
  });
}

template <typename T>
void decode(const uint8_t* codes, int64_t n, int ebits, int mbits, T* out) {
  T table[256];
  const int codes_in_format = 1 << (1 + ebits + mbits);
  for (int c = 0; c < 256; ++c) {
    table[c] = static_cast<T>(c < codes_in_format ? core::fpx_decode_value(static_cast<uint8_t>(c), ebits, mbits) : 0.0f);
  }
  at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = table[codes[i]];
  });
}

}  // namespace

void fpx_encode(const void* x, at::ScalarType dtype, int64_t n, int ebits, int mbits, uint8_t* codes) {
  visit_float_dtype(dtype, [&](auto tag) { encode(static_cast<const decltype(tag)*>(x), n, ebits, mbits, codes); });
}

int64_t fpx_decode(const uint8_t* codes, int64_t n, int ebits, int mbits, void* out, at::ScalarType out_dtype) {
  // Codes with bits above the format's width: find the first (an error for the op).
  const int width = 1 + ebits + mbits;
  std::atomic<int64_t> first_bad{std::numeric_limits<int64_t>::max()};
  at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    uint32_t high = 0;
    for (int64_t i = b; i < e; ++i) high |= codes[i] >> width;
    if (high == 0) return;
    for (int64_t i = b; i < e; ++i) {
      if (codes[i] >> width) {
        int64_t cur = first_bad.load();
        while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
        }
        return;
      }
    }
  });
  if (first_bad.load() != std::numeric_limits<int64_t>::max()) return first_bad.load();
  visit_float_dtype(out_dtype, [&](auto tag) { decode(codes, n, ebits, mbits, static_cast<decltype(tag)*>(out)); });
  return -1;
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
