// The weight-only quantized linears' GEMM on the CPU for more than a few rows of x (int8wo,
// float8wo, uintx, fpx), for the AVX2 and AVX512 builds of csrc/cpu/vec.
//
//   qlinear_gemm  acc[m][n] = sum_k x[m][k] * w[n][k] in float32, x given transposed in blocks of
//                 kGemmBlock rows (qlinear.h). For each block of kNr weight rows, a K-slice of
//                 kSliceCodes codes of each row is decoded (qlinear_decoders.h, the reference's
//                 weights) into an L1 buffer; then, per k, one or two vectors of x^T[k] meet a
//                 broadcast of each row's weight in kNr x 2 register accumulators (fused
//                 multiply-add). The accumulators live in a small per-block buffer across the
//                 K-slices, and go to acc transposed at the end.
//
// Why this shape: each weight is decoded once per call (the GEMV decodes it once per 4 rows of x),
// and never written out as float32 rows for a GEMM to read back (the tiled path's cost); x^T's
// slice stays in L1/L2 while the packed weight streams from memory once.
// Same numerics as the GEMV: the reference's weights, float32 sums in another order.
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include <lowbit/cpu/vec/qlinear_decoders.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

// Weight rows per register block: kNr x 2 accumulators, 2 vectors of x and a broadcast fit the
// register file (32 zmm / 16 ymm).
#if defined(CPU_CAPABILITY_AVX512)
constexpr int kNr = 12;
#else
constexpr int kNr = 6;
#endif
// Codes of each weight row decoded per step: kNr * kSliceCodes floats (6 KiB) and a block of x^T's
// slice (16 KiB) stay in L1 (256 codes, 12 + 32 KiB, were 8-30% slower at M = 32 in one run).
constexpr int64_t kSliceCodes = 128;
constexpr int64_t kSliceChunks = kSliceCodes / kCodeChunk;

// c[r][j * kLanes + i] += sum_k wbuf[r][k] * x[k][j * kLanes + i] for kXv vectors of x (j < kXv),
// c rows kGemmBlock floats apart, x rows kGemmBlock floats apart.
template <int kXv>
LOWBIT_QL_INLINE void block_fma(const float* wbuf, const float* x, int64_t kc, float* c) {
  FVec a[kNr][kXv];
  for (int r = 0; r < kNr; ++r)
    for (int j = 0; j < kXv; ++j) a[r][j] = FVec::loadu(c + r * kGemmBlock + j * kLanes);
  for (int64_t k = 0; k < kc; ++k) {
    FVec xv[kXv];
    for (int j = 0; j < kXv; ++j) xv[j] = FVec::loadu(x + k * kGemmBlock + j * kLanes);
    for (int r = 0; r < kNr; ++r) {
      const FVec b(wbuf[r * kSliceCodes + k]);
      for (int j = 0; j < kXv; ++j) a[r][j] = at::vec::fmadd(b, xv[j], a[r][j]);
    }
  }
  for (int r = 0; r < kNr; ++r)
    for (int j = 0; j < kXv; ++j) a[r][j].store(c + r * kGemmBlock + j * kLanes);
}

// wbuf[r][(c - c0) * 32 + i] = weight (n0 + r, c * 32 + i) for chunks c in [c0, c1), zero past k.
template <class Dec>
LOWBIT_QL_INLINE void decode_slice(Dec& dec, const PackedWeight& w, const RowChunks& rc, int64_t n0, int rows,
                                   int64_t c0, int64_t c1, float* wbuf) {
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = w.data + (n0 + r) * w.row_bytes;
    float* o = wbuf + r * kSliceCodes;
    dec.start_row(n0 + r);
    dec.seek(c0);
    FVec wv[kVecs];
    for (int64_t c = c0; c < c1; ++c) {
      uint8_t pad[kCodeChunk];
      dec.chunk(c < rc.full ? row + c * rc.chunk_bytes : rc.tail(row, pad), c, wv);
      float* oc = o + (c - c0) * kCodeChunk;
      for (int h = 0; h < kVecs; ++h) wv[h].store(oc + h * kLanes);
      // Codes past k decode to some weight (uintx: (0 - zp) * scale); x is zero there, but an
      // infinite weight times zero would be NaN.
      if (c == rc.full) std::fill(oc + (w.k - c * kCodeChunk), oc + kCodeChunk, 0.0f);
    }
  }
}

template <class Dec>
void gemm_rows(const PackedWeight& w, const float* xt, int64_t m_rows, int64_t kp, int64_t n0, int64_t n1,
               float* acc, int64_t acc_stride) {
  Dec dec(w);
  const RowChunks rc(w);
  const int64_t chunks = kp / kCodeChunk, mblocks = (m_rows + kGemmBlock - 1) / kGemmBlock;
  alignas(64) float wbuf[kNr * kSliceCodes];
  std::vector<float> cbuf(static_cast<size_t>(mblocks * kNr * kGemmBlock));
  for (int64_t nb = n0; nb < n1; nb += kNr) {
    const int rows = static_cast<int>(std::min<int64_t>(kNr, n1 - nb));
    std::fill(cbuf.begin(), cbuf.end(), 0.0f);
    if (rows < kNr) std::fill(wbuf + rows * kSliceCodes, wbuf + kNr * kSliceCodes, 0.0f);
    for (int64_t c0 = 0; c0 < chunks; c0 += kSliceChunks) {
      const int64_t c1 = std::min(chunks, c0 + kSliceChunks), kc = (c1 - c0) * kCodeChunk;
      decode_slice(dec, w, rc, nb, rows, c0, c1, wbuf);
      for (int64_t mb = 0; mb < mblocks; ++mb) {
        const int64_t vecs = (std::min<int64_t>(kGemmBlock, m_rows - mb * kGemmBlock) + kLanes - 1) / kLanes;
        const float* x = xt + (mb * kp + c0 * kCodeChunk) * kGemmBlock;
        float* c = cbuf.data() + mb * kNr * kGemmBlock;
        int64_t j = 0;
        for (; j + 2 <= vecs; j += 2) block_fma<2>(wbuf, x + j * kLanes, kc, c + j * kLanes);
        if (j < vecs) block_fma<1>(wbuf, x + j * kLanes, kc, c + j * kLanes);
      }
    }
    for (int64_t m = 0; m < m_rows; ++m) {
      const float* c = cbuf.data() + (m / kGemmBlock) * kNr * kGemmBlock + m % kGemmBlock;
      float* a = acc + m * acc_stride + nb;
      for (int r = 0; r < rows; ++r) a[r] = c[r * kGemmBlock];
    }
  }
}

}  // namespace

void qlinear_gemm(const PackedWeight& w, const float* xt, int64_t m_rows, int64_t kp, int64_t n0, int64_t n1,
                  float* acc, int64_t acc_stride) {
  with_decoder(w, [&](auto* tag) {
    using Dec = std::remove_pointer_t<decltype(tag)>;
    gemm_rows<Dec>(w, xt, m_rows, kp, n0, n1, acc, acc_stride);
  });
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
#endif
