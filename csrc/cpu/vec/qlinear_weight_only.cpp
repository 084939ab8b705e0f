// Inner loops of the weight-only quantized linears on the CPU (int8wo, float8wo, uintx, fpx), for
// the AVX2 and AVX512 builds of csrc/cpu/vec (the DEFAULT build has none: the ops then run the
// reference kernels).
//
//   qlinear_gemv        acc[m][n] = sum_k x[m][k] * w[n][k] in float32 for a few rows of x: each packed
//               weight row is streamed once, its 32-code chunks decoded in registers and
//               multiplied into per-row vector accumulators (fused multiply-add), reduced at the end.
//   qlinear_dequantize  the same decoded chunks stored as float32 rows (the tiled path's GEMM operand).
//
// A decoder turns a chunk into the reference's weights bit for bit: int8 and float8 codes widen
// exactly (then float8 is scaled and rounded to the input dtype); uintx and fpx codes index a
// table of the group's / row's 2^bits weights held in registers, built with the reference's
// arithmetic ((float(q) - zp) * scale, fpx_decode(q) * scale; uintx codes of 6+ bits run it per
// lane). Every weight is rounded to the input dtype as the
// reference rounds it. So the kernels differ from the reference only in the float32 summation
// order (and, where the op folds a per-row scale into its epilogue, in where that one rounding
// happens), and a one-hot x reproduces the reference exactly.
// A row's last partial chunk is decoded from a zero-padded copy (x is zero there).
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <cstring>
#include <type_traits>

#include <lowbit/cpu/vec/qlinear_lanes.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

// ---- decoders: start_row(n), then chunk(p, c, out) for chunk c of row n at p ----------------

struct Int8Decoder {
  explicit Int8Decoder(const PackedWeight&) {}
  LOWBIT_QL_INLINE void start_row(int64_t) {}
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) const {
    for (int h = 0; h < kVecs; ++h) out[h] = widen_int8(p + h * kLanes);
  }
};

// float(code) * row_scale[n] rounded to the input dtype (unscaled when row_scale is null).
template <bool kE4M3>
struct Float8Decoder {
  const PackedWeight& w;
  FVec scale = FVec(1.0f);
  explicit Float8Decoder(const PackedWeight& pw) : w(pw) {}
  LOWBIT_QL_INLINE void start_row(int64_t n) {
    if (w.row_scale != nullptr) scale = FVec(w.row_scale[n]);
  }
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) const {
    for (int h = 0; h < kVecs; ++h) out[h] = widen_float8<kE4M3>(p + h * kLanes);
    if (w.row_scale == nullptr) return;
    for (int h = 0; h < kVecs; ++h) out[h] = out[h] * scale;
    for (int h = 0; h < kVecs; h += 2) round_to(w.round, out[h], out[h + 1]);
  }
};

// Fills a table's registers from values v(e) for e < 2^bits (rounded to the input dtype), and
// its memory copy for the AVX2 gather.
template <int kEntries, class Values>
LOWBIT_QL_INLINE void fill_table(Table<kEntries>& t, float* mem, QRound round, const Values& v) {
  constexpr int kRegs = Table<kEntries>::kRegs;
  FVec r[kRegs + kRegs % 2];
  for (int i = 0; i < kRegs; ++i) r[i] = v(i * kLanes);
  if constexpr (kRegs % 2 == 1) r[kRegs] = FVec(0.0f);
  for (int i = 0; i < kRegs; i += 2) round_to(round, r[i], r[i + 1]);
  for (int i = 0; i < kRegs; ++i) {
    t.t[i] = r[i];
    if (mem != nullptr) r[i].store(mem + i * kLanes);
  }
  t.mem = mem;
}

// uintx: the group's weights (float(q) - zp) * scale, rounded to the input dtype, computed per
// lane (kTable false) or, for up to 16 (AVX2) / 32 (AVX512) codes, once per group into a table
// held in registers that each code indexes. The group advances every group_size / 32 chunks of a
// row; chunks come in order from the row's start (row_dot, dequantize_rows).
template <bool kTable, int kEntries = 16>
struct UintxDecoder {
  const PackedWeight& w;
  CodePlan plan;
  Table<kEntries> table;
  const float* scale_at = nullptr;
  const int32_t* zero_at = nullptr;
  int64_t chunks_per_group, left = 0;
  FVec scale, zero;
  explicit UintxDecoder(const PackedWeight& pw) : w(pw), plan(pw.bits), chunks_per_group(pw.group_size / kCodeChunk) {}
  LOWBIT_QL_INLINE void start_row(int64_t n) {
    const int64_t groups_per_row = w.k / w.group_size;
    scale_at = w.group_scale + n * groups_per_row;
    zero_at = w.group_zero + n * groups_per_row;
    left = 0;
  }
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) {
    if (left == 0) {
      scale = FVec(*scale_at++);
      zero = FVec(static_cast<float>(*zero_at++));
      left = chunks_per_group;
      if constexpr (kTable) {
        fill_table(table, nullptr, w.round,
                   [&](int e0) { return (to_float(add_i32(iota_i32(), set1_i32(e0))) - zero) * scale; });
      }
    }
    --left;
    IVec codes[kVecs];
    plan.codes(p, codes);
    if constexpr (kTable) {
      for (int h = 0; h < kVecs; ++h) out[h] = table(codes[h]);
    } else {
      for (int h = 0; h < kVecs; ++h) out[h] = (to_float(codes[h]) - zero) * scale;
      for (int h = 0; h < kVecs; h += 2) round_to(w.round, out[h], out[h + 1]);
    }
  }
};

// fpx: one table per row of its 2^bits weights fpx_decode(q) * scale[n].
template <int kEntries>
struct FpxTableDecoder {
  const PackedWeight& w;
  CodePlan plan;
  Table<kEntries> table;
  alignas(64) float mem[Table<kEntries>::kRegs * kLanes];
  alignas(64) float values[Table<kEntries>::kRegs * kLanes];  // code_values, zero past 2^bits
  explicit FpxTableDecoder(const PackedWeight& pw) : w(pw), plan(pw.bits) {
    const int codes = 1 << pw.bits;
    for (int e = 0; e < Table<kEntries>::kRegs * kLanes; ++e) values[e] = e < codes ? pw.code_values[e] : 0.0f;
  }
  LOWBIT_QL_INLINE void start_row(int64_t n) {
    const FVec scale(w.row_scale[n]);
    fill_table(table, mem, w.round, [&](int e0) { return FVec::loadu(values + e0) * scale; });
  }
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) const {
    IVec codes[kVecs];
    plan.codes(p, codes);
    for (int h = 0; h < kVecs; ++h) out[h] = table(codes[h]);
  }
};

// ---- row loops --------------------------------------------------------------------------------

// Chunk c of a row, or its zero-padded last partial chunk (c == full).
struct RowChunks {
  int64_t chunk_bytes, full, tail_bytes;
  explicit RowChunks(const PackedWeight& w)
      : chunk_bytes(4 * w.bits), full(w.k / kCodeChunk), tail_bytes(w.row_bytes - (w.k / kCodeChunk) * 4 * w.bits) {}
  LOWBIT_QL_INLINE const uint8_t* tail(const uint8_t* row, uint8_t (&pad)[kCodeChunk]) const {
    std::memset(pad, 0, sizeof(pad));
    std::memcpy(pad, row + full * chunk_bytes, static_cast<size_t>(tail_bytes));
    return pad;
  }
};

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

// Calls fn.template operator()<Decoder>() with the decoder of w's format.
template <class Fn>
LOWBIT_QL_INLINE void with_decoder(const PackedWeight& w, Fn&& fn) {
  switch (w.decode) {
    case QDecode::kInt8: return fn(static_cast<Int8Decoder*>(nullptr));
    case QDecode::kFloat8E4M3: return fn(static_cast<Float8Decoder<true>*>(nullptr));
    case QDecode::kFloat8E5M2: return fn(static_cast<Float8Decoder<false>*>(nullptr));
    case QDecode::kUintx:
#if defined(CPU_CAPABILITY_AVX512)
      if (w.bits == 5) return fn(static_cast<UintxDecoder<true, 32>*>(nullptr));
#else
      if (w.bits <= 3) return fn(static_cast<UintxDecoder<true, 8>*>(nullptr));
#endif
      if (w.bits <= 4) return fn(static_cast<UintxDecoder<true, 16>*>(nullptr));
      return fn(static_cast<UintxDecoder<false>*>(nullptr));
    case QDecode::kFpx:
#if defined(CPU_CAPABILITY_AVX512)
      if (w.bits <= 4) return fn(static_cast<FpxTableDecoder<16>*>(nullptr));
#else
      if (w.bits <= 3) return fn(static_cast<FpxTableDecoder<8>*>(nullptr));
      if (w.bits == 4) return fn(static_cast<FpxTableDecoder<16>*>(nullptr));
#endif
      if (w.bits == 5) return fn(static_cast<FpxTableDecoder<32>*>(nullptr));
      if (w.bits == 6) return fn(static_cast<FpxTableDecoder<64>*>(nullptr));
      return fn(static_cast<FpxTableDecoder<128>*>(nullptr));
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
