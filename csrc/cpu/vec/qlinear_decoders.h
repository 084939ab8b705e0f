// The decoders of the weight-only quantized linears' CPU kernels (qlinear_weight_only.cpp: GEMV
// and dequantize; qlinear_gemm.cpp: the register-blocked GEMM), for the AVX2 and AVX512 builds of
// csrc/cpu/vec. A decoder turns a 32-code chunk of a packed weight row into the reference's weights
// bit for bit: int8 and float8 codes widen exactly (then float8 is scaled and rounded to the input
// dtype); uintx and fpx codes index a table of the group's / row's 2^bits weights held in
// registers, built with the reference's arithmetic ((float(q) - zp) * scale, fpx_decode(q) *
// scale; uintx codes of 6+ bits run it per lane). Every weight is rounded to the input dtype as
// the reference rounds it.
// Use: start_row(n), then optionally seek(c) to start at chunk c of that row, then chunk(p, c, out)
// for consecutive chunks c of the row (p at chunk c). Internal linkage, like qlinear_lanes.h.
#pragma once

#include <cstring>

#include <lowbit/cpu/vec/qlinear_lanes.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

struct Int8Decoder {
  explicit Int8Decoder(const PackedWeight&) {}
  LOWBIT_QL_INLINE void start_row(int64_t) {}
  LOWBIT_QL_INLINE void seek(int64_t) {}
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) const {
    widen_int8_chunk(p, out);
  }
};

// float(code) * row_scale[n] rounded to the input dtype (unscaled when row_scale is null).
template <bool kE4M3>
struct Float8Decoder {
  const PackedWeight& w;
  FVec scale = FVec(1.0f);
  bool daz = denormals_are_zero();  // read in the thread that decodes: MXCSR is per thread
  explicit Float8Decoder(const PackedWeight& pw) : w(pw) {}
  LOWBIT_QL_INLINE void start_row(int64_t n) {
    if (w.row_scale != nullptr) scale = FVec(w.row_scale[n]);
  }
  LOWBIT_QL_INLINE void seek(int64_t) {}
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) const {
    widen_float8_chunk<kE4M3>(p, daz, out);
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
// row; chunks come in order from the row's start or from the chunk seek() names.
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
  // Chunk c of the row comes next: skip the groups before it, load its group if c is inside one.
  LOWBIT_QL_INLINE void seek(int64_t c) {
    const int64_t groups = c / chunks_per_group, into = c % chunks_per_group;
    scale_at += groups;
    zero_at += groups;
    left = 0;
    if (into != 0) {
      next_group();
      left -= into;
    }
  }
  LOWBIT_QL_INLINE void next_group() {
    scale = FVec(*scale_at++);
    zero = FVec(static_cast<float>(*zero_at++));
    left = chunks_per_group;
    if constexpr (kTable) {
      fill_table(table, nullptr, w.round,
                 [&](int e0) { return (to_float(add_i32(iota_i32(), set1_i32(e0))) - zero) * scale; });
    }
  }
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) {
    if (left == 0) next_group();
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
  LOWBIT_QL_INLINE void seek(int64_t) {}
  LOWBIT_QL_INLINE void chunk(const uint8_t* p, int64_t, FVec (&out)[kVecs]) const {
    IVec codes[kVecs];
    plan.codes(p, codes);
    for (int h = 0; h < kVecs; ++h) out[h] = table(codes[h]);
  }
};

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
}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
