// Inner loops of the weight-only quantized linears on the CPU (int8wo, float8wo, uintx, fpx) for a
// few rows of x, for the AVX2 and AVX512 builds of csrc/cpu/vec (the DEFAULT build has none: the
// ops then run the reference kernels). The decoders are qlinear_decoders.h's; more rows of x run
// qlinear_gemm.cpp.
//
//   qlinear_gemv        acc[m][n] = sum_k x[m][k] * w[n][k] in float32 for a few rows of x: each packed
//               weight row is streamed once, its 32-code chunks decoded in registers and
//               multiplied into per-row vector accumulators (fused multiply-add), reduced at the end.
//   qlinear_dequantize  the same decoded chunks stored as float32 rows (the tiled path's GEMM operand).
//
// The kernels differ from the reference only in the float32 summation order (and, where the op
// folds a per-row scale into its epilogue, in where that one rounding happens), and a one-hot x
// reproduces the reference exactly.
// A row's last partial chunk is decoded from a zero-padded copy (x is zero there).
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <cstring>
#include <type_traits>

#include <lowbit/cpu/vec/qlinear_decoders.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

// How far ahead of the GEMV's reads the weight is prefetched: ~32 cache lines cover DRAM's latency
// at the rate the decoders consume bytes.
constexpr int64_t kPrefetchBytes = 2048;

// acc[m * acc_stride] = dot(x row m, weight row) for kM rows of x. Two chunks per step into two
// accumulator sets when kM is 1 or 2, so the multiply-add chains overlap.
template <int kM, class Dec>
LOWBIT_QL_INLINE void row_dot(Dec& dec, const RowChunks& rc, const uint8_t* row, const float* x, int64_t x_stride, float* acc,
                    int64_t acc_stride) {
  constexpr int kSets = kM <= 2 ? 2 : 1;
  FVec s[kSets][kM][kVecs];
  for (int u = 0; u < kSets; ++u)
    for (int m = 0; m < kM; ++m)
      for (int h = 0; h < kVecs; ++h) s[u][m][h] = FVec(0.0f);
  auto step = [&](auto set, const uint8_t* p, int64_t c) __attribute__((always_inline)) {
    FVec wv[kVecs];
    dec.chunk(p, c, wv);
    const float* xc = x + c * kCodeChunk;
    for (int m = 0; m < kM; ++m)
      for (int h = 0; h < kVecs; ++h)
        s[set()][m][h] = at::vec::fmadd(wv[h], FVec::loadu(xc + m * x_stride + h * kLanes), s[set()][m][h]);
  };
  auto set0 = [] { return 0; };
  auto set1 = [] { return kSets - 1; };
  int64_t c = 0;
  for (; c + 1 < rc.full; c += 2) {
    // The weight streams from DRAM once: ask for it kPrefetchBytes ahead (into the next rows at a
    // row's end; a prefetch past the tensor does not fault).
    _mm_prefetch(reinterpret_cast<const char*>(row + c * rc.chunk_bytes) + kPrefetchBytes, _MM_HINT_T0);
    step(set0, row + c * rc.chunk_bytes, c);
    step(set1, row + (c + 1) * rc.chunk_bytes, c + 1);
  }
  if (c < rc.full) step(set0, row + c * rc.chunk_bytes, c);
  if (rc.tail_bytes > 0) {
    uint8_t pad[kCodeChunk];
    step(set0, rc.tail(row, pad), rc.full);
  }
  for (int m = 0; m < kM; ++m) {
    FVec t = s[0][m][0];
    for (int h = 1; h < kVecs; ++h) t = t + s[0][m][h];
    for (int u = 1; u < kSets; ++u)
      for (int h = 0; h < kVecs; ++h) t = t + s[u][m][h];
    acc[m * acc_stride] = reduce_add(t);
  }
}

template <class Dec>
void gemv_rows(const PackedWeight& w, const float* x, int64_t m_rows, int64_t x_stride, int64_t n0, int64_t n1,
               float* acc, int64_t acc_stride) {
  Dec dec(w);
  const RowChunks rc(w);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.data + n * w.row_bytes;
    // Rows of x four at a time; the weight row stays in L1 between them.
    for (int64_t m0 = 0; m0 < m_rows; m0 += 4) {
      dec.start_row(n);
      const float* xm = x + m0 * x_stride;
      float* am = acc + m0 * acc_stride + n;
      switch (m_rows - m0 >= 4 ? 4 : m_rows - m0) {
        case 1: row_dot<1>(dec, rc, row, xm, x_stride, am, acc_stride); break;
        case 2: row_dot<2>(dec, rc, row, xm, x_stride, am, acc_stride); break;
        case 3: row_dot<3>(dec, rc, row, xm, x_stride, am, acc_stride); break;
        default: row_dot<4>(dec, rc, row, xm, x_stride, am, acc_stride); break;
      }
    }
  }
}

template <class Dec>
void dequantize_rows(const PackedWeight& w, int64_t n0, int64_t n1, float* out) {
  Dec dec(w);
  const RowChunks rc(w);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.data + n * w.row_bytes;
    float* o = out + (n - n0) * w.k;
    dec.start_row(n);
    FVec wv[kVecs];
    for (int64_t c = 0; c < rc.full; ++c) {
      dec.chunk(row + c * rc.chunk_bytes, c, wv);
      for (int h = 0; h < kVecs; ++h) wv[h].store(o + c * kCodeChunk + h * kLanes);
    }
    if (rc.tail_bytes > 0) {
      uint8_t pad[kCodeChunk];
      alignas(64) float tmp[kCodeChunk];
      dec.chunk(rc.tail(row, pad), rc.full, wv);
      for (int h = 0; h < kVecs; ++h) wv[h].store(tmp + h * kLanes);
      std::memcpy(o + rc.full * kCodeChunk, tmp, static_cast<size_t>(w.k - rc.full * kCodeChunk) * sizeof(float));
    }
  }
}

}  // namespace

void qlinear_gemv(const PackedWeight& w, const float* x, int64_t m_rows, int64_t x_stride, int64_t n0, int64_t n1, float* acc,
          int64_t acc_stride) {
  with_decoder(w, [&](auto* tag) {
    using Dec = std::remove_pointer_t<decltype(tag)>;
    gemv_rows<Dec>(w, x, m_rows, x_stride, n0, n1, acc, acc_stride);
  });
}

void qlinear_dequantize(const PackedWeight& w, int64_t n0, int64_t n1, float* out) {
  with_decoder(w, [&](auto* tag) {
    using Dec = std::remove_pointer_t<decltype(tag)>;
    dequantize_rows<Dec>(w, n0, n1, out);
  });
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
#endif
