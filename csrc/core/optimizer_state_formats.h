// Storage formats of the low-bit AdamW states (first moment m = exp_avg, second moment
// v = exp_avg_sq): layouts, scale rules and the per-element encode / decode that the CPU
// reference and the CUDA kernel share.
//
// Every quantized state is stored flat (in the parameter's row-major order) as codes plus fp32
// scales; a value is decoded as  code_value * scale  and encoded as the code nearest to
// x * (1 / scale) (0 where scale == 0, which is how a fresh state, all scales 0, decodes to 0).
//
//   "8bit"  m: uint8 codes of the signed 8-bit dynamic tree map, one absmax scale per block of
//           block_size (default 256) elements;  v: same with the unsigned map.
//           bytes / param: 2 + 8 / block_size (2.03 at 256).
//   "4bit"  m: 4-bit codes of the signed 4-bit dynamic tree map, two per byte (element 2k in
//           the low nibble), one absmax scale per block of block_size (default 128).
//           v: 4-bit codes of the zero-free linear map (i + 1) / 16, two per byte, with rank-1
//           normalization (Li et al., 2023): viewing the parameter as a matrix
//           (size(0), numel / size(0)), the scale of element (i, j) is min(r_i, c_j), r_i the
//           max of row i of v and c_j the max of column j; r (rows floats) then c (cols floats)
//           are stored one after the other. Rank-1 is used when its statistics are no larger
//           than block-wise scales would be (dim >= 2 and rows + cols <= numel / block_size);
//           otherwise (vectors, thin matrices) v uses block-wise absmax scales over block_size
//           with the same linear map. bytes / param <= 1 + 8 / block_size (1.06 at 128).
//   "fp8"   m and v: float8_e4m3fn, one scale per block of block_size (default 256),
//           scale = absmax / 448, data = e4m3(x * (1 / scale)) rounded to nearest even (saturating).
//           bytes / param: 2 + 8 / block_size.
// Parameters with fewer than min_quantized_size elements (default 4096) keep plain fp32 m and v
// of the parameter's shape (and empty scale tensors), exactly as torch.optim.AdamW does.
//
// Non-finite moments stay confined to their element, as in torch.optim.AdamW. An inf or NaN
// gradient element, or a finite one whose square overflows, makes that element's new v inf or
// NaN (and its m inf, NaN or huge). Such an element is left out of both block scales (absmax,
// rank-1 row / column maxima are taken over the elements whose new v is finite), so the rest of
// its block is stored exactly as if it were absent. The element itself is stored saturated:
//   +-inf or huge  the map's or e4m3's extreme code (decodes to +-scale, the block's largest
//                  finite magnitude; to 0 when the block has no finite nonzero value);
//   NaN            map formats (no NaN code): the code nearest 0; fp8: the e4m3 NaN code 0x7F.
// Its parameter follows torch in the step the gradient arrives: NaN for an inf or NaN gradient
// (m / sqrt(v) = inf / inf), unchanged but for weight decay for an overflowing one (m / inf = 0);
// a NaN parameter stays NaN. The one difference comes later: torch keeps v = inf for good and so
// freezes an overflowed element (update 0 every step), while a quantized v holds the block's
// largest finite value and the element keeps taking ordinary steps. fp32 states (parameters
// below min_quantized_size) are torch's exactly.
#pragma once

#include <c10/util/Float8_e4m3fn.h>

#include <math.h>
#include <cstdint>

#include <lowbit/core/float8_format.h>
#include <lowbit/core/host_device.h>
#include <lowbit/core/quantization_maps.h>

namespace lowbit::core {

// The optimizer's choice ("8bit", "4bit", "fp8").
enum class StateFormat : int { k8bit = 0, k4bit = 1, kFp8 = 2 };

// How one parameter's state is actually stored (the format, or fp32 below the size threshold).
enum class StateLayout : int {
  kFloat32 = 0,        // m, v fp32, parameter-shaped
  kDynamicTree8 = 1,   // "8bit"
  kFp8 = 2,            // "fp8"
  k4bitBlockwise = 3,  // "4bit", v with block-wise scales
  k4bitRank1 = 4,      // "4bit", v with rank-1 scales
};

constexpr int64_t kDefaultMinQuantizedSize = 4096;

inline int64_t default_block_size(StateFormat f) { return f == StateFormat::k4bit ? 128 : 256; }

// ---- the rank-1 decision and the matrix view ------------------------------------------------

// The (rows, cols) matrix view of a parameter for rank-1 normalization.
struct MatrixShape {
  int64_t rows, cols;
};

inline MatrixShape rank1_matrix_shape(int64_t size0, int64_t numel) {
  return {size0, size0 == 0 ? 0 : numel / size0};
}

// Rank-1 normalization of the 4-bit second moment, when its row + column statistics take no
// more room than block-wise scales would.
inline bool use_rank1_second_moment(int64_t dim, int64_t size0, int64_t numel, int64_t block_size) {
  if (dim < 2 || numel == 0) return false;
  const MatrixShape m = rank1_matrix_shape(size0, numel);
  return m.rows + m.cols <= numel / block_size;
}

inline int64_t num_blocks(int64_t numel, int64_t block_size) { return (numel + block_size - 1) / block_size; }

// ---- scales ---------------------------------------------------------------------------------

// Whether x is finite (false for inf and NaN), without <cmath>'s isfinite on the device.
LOWBIT_HD bool finite_value(float x) { return fabsf(x) <= 3.40282346638528859812e+38f; }  // FLT_MAX

// |x| for finite x, 0 for inf and NaN.
LOWBIT_HD float finite_abs(float x) { return finite_value(x) ? fabsf(x) : 0.0f; }

// What an element adds to its block's m and v scales (the max over the block): its |m| and |v|
// when its new v is finite, else nothing (see the file comment).
LOWBIT_HD float m_scale_part(float m, float v) { return finite_value(v) ? finite_abs(m) : 0.0f; }
LOWBIT_HD float v_scale_part(float v) { return finite_abs(v); }

// Every scale is 0 or a normal float: a positive scale below FLT_MIN (a block of subnormal
// moments) is raised to FLT_MIN, so that 1 / scale, which the encoders multiply by, is finite.
// The block's values are below FLT_MIN then and still encode into [-1, 1].
LOWBIT_HD float normal_scale(float s) { return s > 0.0f && s < 1.17549435082228750797e-38f ? 1.17549435082228750797e-38f : s; }

// Block scale of the map formats: the block's absmax (values normalize into [-1, 1]).
LOWBIT_HD float map_scale_from_absmax(float absmax) { return normal_scale(absmax); }

// Block scale of the fp8 format: absmax / 448, 0 for an all-zero block.
LOWBIT_HD float fp8_state_scale_from_absmax(float absmax) { return normal_scale(absmax / kE4M3Max); }

// Rank-1 scale of element (i, j): min(row max, column max); both bound |v_ij| from above.
LOWBIT_HD float rank1_scale(float row_max, float col_max) { return normal_scale(fminf(row_max, col_max)); }

// ---- per-element encode / decode -------------------------------------------------------------

// What the encoders multiply by: 1 / scale (+inf for a zero scale). A multiply, not a division
// per element: a division costs ~6 multiplies of throughput on CPUs (measured on AVX-512), and the
// encoders did one per value; x * (1 / scale) is within an ulp of x / scale (bitsandbytes
// normalizes the same way). Rank-1 scales take 1 / min(r, c) = max(1 / r, 1 / c) (exact: 1 / s
// rounds monotonically), so per-element reciprocals come from the row and column ones.
LOWBIT_HD float scale_reciprocal(float scale) { return 1.0f / scale; }

// x * reciprocal, with 0 for a zero scale (an all-zero block or a fresh state: reciprocal +inf)
// and for NaN x.
LOWBIT_HD float normalize_by_reciprocal(float x, float reciprocal) {
  return finite_value(reciprocal) && x == x ? x * reciprocal : 0.0f;
}

LOWBIT_HD float normalize_by_scale(float x, float scale) { return normalize_by_reciprocal(x, scale_reciprocal(scale)); }

LOWBIT_HD uint8_t encode_with_map(const float* map, int map_size, float x, float scale) {
  return static_cast<uint8_t>(nearest_map_index(map, map_size, normalize_by_scale(x, scale)));
}

LOWBIT_HD float decode_with_map(const float* map, uint8_t code, float scale) { return mul_rn(map[code], scale); }

// e4m3(x / scale) rounded to nearest even, saturating (+-inf to +-448); NaN to the NaN code 0x7F
// whatever its sign bit (so CPU and CUDA store the same byte); 0 for a zero scale.
LOWBIT_HD c10::Float8_e4m3fn encode_fp8_state(float x, float scale) {
  if (x != x) return c10::Float8_e4m3fn(static_cast<uint8_t>(0x7F), c10::Float8_e4m3fn::from_bits());
  if (!(scale > 0.0f)) return c10::Float8_e4m3fn(0.0f);
  return c10::Float8_e4m3fn(fminf(fmaxf(normalize_by_scale(x, scale), -kE4M3Max), kE4M3Max));
}

LOWBIT_HD float decode_fp8_state(c10::Float8_e4m3fn code, float scale) {
  return mul_rn(static_cast<float>(code), scale);
}

// 4-bit codes, two per byte: element 2k in the low nibble, 2k + 1 in the high nibble.
LOWBIT_HD uint8_t nibble(uint8_t byte, int64_t element) {
  return (element & 1) ? static_cast<uint8_t>(byte >> 4) : static_cast<uint8_t>(byte & 0xF);
}

LOWBIT_HD uint8_t pack_nibbles(uint8_t low, uint8_t high) { return static_cast<uint8_t>(low | (high << 4)); }

}  // namespace lowbit::core
