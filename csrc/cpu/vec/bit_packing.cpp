// Vectorized CPU kernels of lowbit::pack_uintx / unpack_uintx (reference: csrc/cpu/bit_packing.cpp,
// one core::pack_byte / unpack_code per output element). Eight `bits`-wide codes fill exactly
// `bits` bytes of the little-endian stream, so a group of 8 codes is one 64-bit word: code j at
// bit j * bits, written or read as its `bits` low bytes. The last partial group, if any, goes
// through the reference's per-element functions. Templated on bits so the shifts are constants.
#include <lowbit/cpu/vec/vec_util.h>

#include <lowbit/core/bitstream.h>

#include <atomic>
#include <limits>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the 64-bit group packing assumes a little-endian host");

constexpr int64_t kGroupGrain = 1 << 12;

template <int kBits>
void pack_groups(const uint8_t* codes, int64_t groups, uint8_t* packed) {
  at::parallel_for(0, groups, kGroupGrain, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const uint8_t* c = codes + 8 * g;
      uint64_t v = 0;
      for (int j = 0; j < 8; ++j) v |= static_cast<uint64_t>(c[j]) << (j * kBits);
      std::memcpy(packed + g * kBits, &v, kBits);
    }
  });
}

#if defined(CPU_CAPABILITY_AVX512)
// Unpacks groups [g, e), eight groups (64 codes) per round, where the CPU has AVX-512 VBMI: one
// byte permute puts each group's kBits bytes in its own 64-bit lane (zero above), and one
// vpmultishiftqb takes the 8 bits at offset j * kBits of that lane into byte j, which the mask
// cuts to the code. Returns the first group it did not unpack.
template <int kBits>
__attribute__((target("avx512vbmi"))) int64_t unpack_groups_vbmi(const uint8_t* packed, int64_t g, int64_t e,
                                                                 uint8_t* codes) {
  alignas(64) uint8_t spread[64], shifts[64];
  for (int i = 0; i < 64; ++i) {
    const int group = i / 8, byte = i % 8;
    spread[i] = static_cast<uint8_t>(byte < kBits ? group * kBits + byte : 0);
    shifts[i] = static_cast<uint8_t>(byte * kBits);
  }
  uint64_t in_group = 0;  // the bytes of each lane that hold its group
  for (int i = 0; i < 64; ++i) in_group |= static_cast<uint64_t>(i % 8 < kBits) << i;
  const __m512i spread_v = _mm512_load_si512(spread), shifts_v = _mm512_load_si512(shifts);
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << kBits) - 1));
  const __mmask64 load_mask = kBits == 8 ? ~__mmask64{0} : (__mmask64{1} << (8 * kBits)) - 1;
  for (; g + 8 <= e; g += 8) {
    const __m512i bytes = _mm512_maskz_loadu_epi8(load_mask, packed + g * kBits);
    const __m512i words = _mm512_maskz_permutexvar_epi8(in_group, spread_v, bytes);
    _mm512_storeu_si512(codes + 8 * g, _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts_v, words), mask));
  }
  return g;
}

#endif

template <int kBits>
void unpack_groups(const uint8_t* packed, int64_t groups, uint8_t* codes) {
  constexpr uint64_t mask = (uint64_t{1} << kBits) - 1;
  at::parallel_for(0, groups, kGroupGrain, [&](int64_t b, int64_t e) {
#if defined(CPU_CAPABILITY_AVX512)
    if (cpu_has_vbmi()) b = unpack_groups_vbmi<kBits>(packed, b, e, codes);
#endif
    for (int64_t g = b; g < e; ++g) {
      uint64_t v = 0;
      std::memcpy(&v, packed + g * kBits, kBits);
      uint8_t* c = codes + 8 * g;
      for (int j = 0; j < 8; ++j) c[j] = static_cast<uint8_t>((v >> (j * kBits)) & mask);
    }
  });
}

template <typename F>
void with_bits(int bits, F&& f) {
  switch (bits) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 5: f(std::integral_constant<int, 5>()); break;
    case 6: f(std::integral_constant<int, 6>()); break;
    case 7: f(std::integral_constant<int, 7>()); break;
    default: f(std::integral_constant<int, 8>()); break;
  }
}

}  // namespace

int64_t pack_uintx(const uint8_t* codes, int64_t n, int bits, uint8_t* packed) {
  // Codes wider than `bits`: find the first (an error for the op) before writing anything.
  std::atomic<int64_t> first_bad{std::numeric_limits<int64_t>::max()};
  if (bits < 8) {
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      uint32_t high = 0;
      for (int64_t i = b; i < e; ++i) high |= codes[i] >> bits;
      if (high == 0) return;
      for (int64_t i = b; i < e; ++i) {
        if (codes[i] >> bits) {
          int64_t cur = first_bad.load();
          while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
          }
          return;
        }
      }
    });
    if (first_bad.load() != std::numeric_limits<int64_t>::max()) return first_bad.load();
  }
  const int64_t groups = n / 8;
  with_bits(bits, [&](auto kb) { pack_groups<decltype(kb)::value>(codes, groups, packed); });
  const int64_t num_bytes = core::packed_num_bytes(n, bits);
  for (int64_t j = groups * bits; j < num_bytes; ++j) packed[j] = core::pack_byte(codes, n, bits, j);
  return -1;
}

void unpack_uintx(const uint8_t* packed, int bits, int64_t n, uint8_t* codes) {
  const int64_t groups = n / 8;
  with_bits(bits, [&](auto kb) { unpack_groups<decltype(kb)::value>(packed, groups, codes); });
  for (int64_t i = groups * 8; i < n; ++i) codes[i] = core::unpack_code(packed, bits, i);
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
