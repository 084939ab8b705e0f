// Fast CPU kernels of the quantized linear ops, registered at the CPU key (they take precedence
// over the reference kernels, csrc/cpu/quantized_linear_reference.cpp, registered at
// CompositeExplicitAutograd). Same checks, same numerics; the loops are the vectorized kernels of
// csrc/cpu/vec (qlinear_weight_only.cpp, qlinear_int8.cpp), picked per instruction set.
//
//   weight-only (int8wo, float8wo, fpx, uintx)
//     M <= kGemvMaxRows  fused dequantize + GEMV: every packed weight row is streamed once and
//                        decoded in registers, parallel over output rows. At M = 1 this reads
//                        bits / 32 of float32's bytes, so it beats the float32 linear.
//     M <= kGemmMaxRows  fused dequantize + register-blocked GEMM (csrc/cpu/vec/qlinear_gemm.cpp):
//                        each weight decoded once into L1 and multiplied with 32 rows of x^T at
//                        a time, parallel over blocks of output rows.
//     larger M           4 MiB tiles of weight rows dequantized (float32, the reference's
//                        weights) and multiplied with aten's float32 GEMM, parallel over tiles.
//     Each weight equals the reference's (decoded and rounded to the input dtype); the sums run
//     in float32 in another order, then the epilogue (int8wo's scale, bias, the cast) is the
//     reference's own ATen ops, except that for float32 input the per-column scale multiply runs
//     in the kernel's tasks (the same one float32 rounding). float8wo with float32 input scales
//     the sum, not each weight.
//   int8_dynamic_activation_int8   the reference's per-token quantization (core ops), an exact
//                        int32 GEMM (VNNI / vpmaddwd), the reference's epilogue: bit-equal.
//   int8_dynamic_activation_int4   the reference's fake-quantized activations, then the
//                        weight-only paths on the 4-bit weight in float32, its epilogue.
//   float8_dynamic_activation      the reference's activation cast, then the weight-only paths
//                        on the unscaled float8 weight (exact float32 values, as the reference's
//                        emulated scaled_mm converts them), then its scale epilogue.
// The reference runs where these do not apply: LOWBIT_CPU_KERNELS=reference or the DEFAULT set
// (no qlinear kernels), packed rows that do not start on a byte, uintx groups that are not a
// multiple of 32, 8-bit fpx.
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <lowbit/core/affine.h>
#include <lowbit/core/float8_cast.h>
#include <lowbit/core/fpx_format.h>
#include <lowbit/cpu/quantized_linear_reference.h>
#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/quantized_linear_checks.h>

#include <algorithm>
#include <array>

namespace lowbit::cpu {
namespace {

using OptTensor = std::optional<at::Tensor>;
using vec::PackedWeight;
using vec::QDecode;
using vec::QRound;

// Paths by rows of x (M), measured on 4096 x 4096 weights (one AVX-512 thread, README):
//   M <= kGemvMaxRows   the fused GEMV: it decodes each weight row once per 4 rows of x, so it
//                       wins while M is small (M = 4 pads the GEMM to 16 rows: half its speed).
//   M <= kGemmMaxRows   the fused GEMM: each weight decoded once per kGemmChunkRows rows of x
//                       and register-blocked over 32 of them; 64 rows' x^T (1 MiB at K = 4096)
//                       stays in L2 while the weight streams by (128 rows spill it: 20% slower).
//   larger M            aten's float32 GEMM on dequantized tiles, which is the faster GEMM by then
//                       (M = 128: the fused GEMM 1.0x float32, tiles 0.82-1.03x; M = 256: 0.80-0.90x
//                       against 0.89x; one Xeon thread).
constexpr int64_t kGemvMaxRows = 8;
constexpr int64_t kGemmMaxRows = 128;
constexpr int64_t kGemmChunkRows = 64;
static_assert(kGemmChunkRows % vec::kGemmBlock == 0, "a pass starts on a block of x^T");
// Weight bytes (float32) dequantized per tile of the tiled path, up to 256 rows: aten's GEMM needs
// wide tiles to run at its speed. 256 KiB tiles (16 rows at K = 4096) took M = 512 to 0.56x of
// float32, 4 MiB tiles (256 rows) to 1.00x (int8wo; uint4wo 0.72 -> 0.89x).
constexpr int64_t kTileBytes = int64_t{4} << 20;

const vec::Kernels* qlinear_kernels() {
  const vec::Kernels* k = vec::kernels();
  return k != nullptr && k->qlinear_gemv != nullptr ? k : nullptr;
}

QRound round_of(at::ScalarType t) {
  return t == at::kBFloat16 ? QRound::kBFloat16 : t == at::kHalf ? QRound::kHalf : QRound::kFloat;
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// x (M, K) as float32 rows of kp >= K values, zero past K (the kernels read whole chunks of
// codes); float32 input with kp == K is used as it is, without a copy.
at::Tensor padded_rows(const at::Tensor& x2d, int64_t kp) {
  if (kp == x2d.size(1)) return x2d.to(at::kFloat).contiguous();
  at::Tensor xf = at::zeros({x2d.size(0), kp}, x2d.options().dtype(at::kFloat));
  xf.narrow(1, 0, x2d.size(1)).copy_(x2d);
  return xf;
}

// out[m][n] *= col_scale[n] for columns [n0, n1): the float32 epilogue multiply, one rounding as
// ATen's mul_ rounds it, done inside the kernel's task (no pass of its own over the output).
void scale_columns(float* out, int64_t m, int64_t n, int64_t n0, int64_t n1, const float* col_scale) {
  if (col_scale == nullptr) return;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n0; j < n1; ++j) out[i * n + j] *= col_scale[j];
}

// acc (M, N) float32 = x (M, K) @ w^T, w the reference's weight in the input's dtype, each column
// then times col_scale[n] when given (float32 input: the reference's epilogue multiply).
at::Tensor weight_only_acc(const vec::Kernels& kern, const at::Tensor& input, PackedWeight w,
                           const float* col_scale = nullptr) {
  const at::Tensor x2d = input.reshape({-1, w.k});
  const int64_t m = x2d.size(0), n = w.n, k = w.k;
  w.round = round_of(input.scalar_type());
  at::Tensor acc = at::empty({m, n}, input.options().dtype(at::kFloat));
  if (m == 0 || n == 0) return acc;
  float* out = acc.data_ptr<float>();
  const int64_t kp = round_up(std::max<int64_t>(k, 1), vec::kCodeChunk);
  if (m <= kGemvMaxRows) {
    const at::Tensor xf = padded_rows(x2d, kp);
    const float* xp = xf.const_data_ptr<float>();
    // At least 64 KiB of weight per task: thread start-up stays small beside the row streaming.
    const int64_t grain = std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(w.row_bytes, 1));
    at::parallel_for(0, n, grain, [&](int64_t n0, int64_t n1) {
      kern.qlinear_gemv(w, xp, m, kp, n0, n1, out, n);
      scale_columns(out, m, n, n0, n1, col_scale);
    });
    return acc;
  }
  if (m <= kGemmMaxRows) {
    // x transposed in blocks of kGemmBlock rows, zero-padded (the kernel's layout, kernels.h).
    const int64_t blocks = (m + vec::kGemmBlock - 1) / vec::kGemmBlock;
    at::Tensor xp = at::zeros({blocks * vec::kGemmBlock, kp}, acc.options());
    xp.narrow(0, 0, m).narrow(1, 0, k).copy_(x2d);
    const at::Tensor xt = xp.view({blocks, vec::kGemmBlock, kp}).transpose(1, 2).contiguous();
    const int64_t row_blocks = (n + vec::kGemmRowAlign - 1) / vec::kGemmRowAlign;
    const int64_t grain =
        std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(vec::kGemmRowAlign * w.row_bytes, 1));
    // kGemmChunkRows rows of x per pass: their x^T stays in L2 while the weight streams by.
    for (int64_t m0 = 0; m0 < m; m0 += kGemmChunkRows) {
      const int64_t rows = std::min(kGemmChunkRows, m - m0);
      const float* xtp = xt.const_data_ptr<float>() + m0 * kp;
      float* out0 = out + m0 * n;
      at::parallel_for(0, row_blocks, grain, [&](int64_t b0, int64_t b1) {
        const int64_t n0 = b0 * vec::kGemmRowAlign, n1 = std::min(n, b1 * vec::kGemmRowAlign);
        kern.qlinear_gemm(w, xtp, rows, kp, n0, n1, out0, n);
        scale_columns(out0, rows, n, n0, n1, col_scale);
      });
    }
    return acc;
  }
  // Each thread dequantizes tiles of kTileBytes of weight rows and multiplies each by aten's
  // float32 GEMM (single-threaded inside the parallel region).
  const at::Tensor xf = x2d.to(at::kFloat).contiguous();
  const int64_t tile = std::clamp<int64_t>(kTileBytes / std::max<int64_t>(4 * k, 1), 16, 256);
  const int64_t tiles = (n + tile - 1) / tile;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    at::Tensor buf = at::empty({tile, k}, acc.options());
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t * tile, rows = std::min(tile, n - n0);
      kern.qlinear_dequantize(w, n0, n0 + rows, buf.data_ptr<float>());
      acc.narrow(1, n0, rows).copy_(at::mm(xf, buf.narrow(0, 0, rows).t()));
      scale_columns(out, m, n, n0, n0 + rows, col_scale);
    }
  });
  return acc;
}

// y = acc in the input's dtype, plus bias, as the reference adds it after its GEMM.
at::Tensor finish(const at::Tensor& acc, const at::Tensor& input, const OptTensor& bias) {
  return unflatten_rows(add_bias(acc.to(input.scalar_type()), bias), input);
}

// A bit-packed weight (N, K * bits / 8) whose rows each start on a byte.
bool rows_byte_aligned(const at::Tensor& packed, int64_t k, int64_t bits) {
  return packed.size(1) * 8 == k * bits;
}

PackedWeight packed_rows(const at::Tensor& data, int64_t n, int64_t k, int bits, QDecode decode) {
  PackedWeight w;
  w.decode = decode;
  w.data = static_cast<const uint8_t*>(data.const_data_ptr());
  w.n = n;
  w.k = k;
  w.row_bytes = data.size(1);
  w.bits = bits;
  return w;
}

at::Tensor int8_weight_only_linear_cpu(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                       const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  if (kern == nullptr) return int8_weight_only_linear_ref(input, weight, scale, bias);
  const char* op = "int8_weight_only_linear";
  const ops::QLinearDims d = ops::check_int8_weight(weight, scale, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  const at::Tensor wc = weight.contiguous();
  const PackedWeight w = packed_rows(wc, wc.size(0), wc.size(1), 8, QDecode::kInt8);
  // The reference's epilogue: GEMM output in the input dtype, times the scale in that dtype (for
  // float32 input one float32 multiply per output, done in the kernel's tasks).
  if (input.scalar_type() == at::kFloat) {
    const at::Tensor sc = scale.to(at::kFloat).contiguous();
    return finish(weight_only_acc(*kern, input, w, sc.const_data_ptr<float>()), input, bias);
  }
  at::Tensor y = weight_only_acc(*kern, input, w).to(input.scalar_type());
  y = y.mul_(scale.reshape({1, -1}).to(y.scalar_type()));
  return unflatten_rows(add_bias(y, bias), input);
}

at::Tensor float8_weight_only_linear_cpu(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                         const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  if (kern == nullptr) return float8_weight_only_linear_ref(input, weight, scale, bias);
  const char* op = "float8_weight_only_linear";
  const ops::QLinearDims d = ops::check_float8_weight(weight, scale, false, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  const at::Tensor wc = weight.contiguous().view(at::kByte);
  const at::Tensor sc = scale.contiguous();
  PackedWeight w = packed_rows(wc, wc.size(0), wc.size(1), 8,
                               weight.scalar_type() == at::kFloat8_e4m3fn ? QDecode::kFloat8E4M3 : QDecode::kFloat8E5M2);
  if (input.scalar_type() != at::kFloat) {
    w.row_scale = sc.const_data_ptr<float>();
    return finish(weight_only_acc(*kern, input, w), input, bias);
  }
  // float32 input: the kernel sums x * float(code) and the row's scale multiplies the sum once
  // (the reference scales each weight first; a one-hot x gives the same bits either way).
  return finish(weight_only_acc(*kern, input, w, sc.const_data_ptr<float>()), input, bias);
}

at::Tensor fpx_weight_only_linear_cpu(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                      int64_t ebits, int64_t mbits, const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  const int64_t bits = 1 + ebits + mbits;
  const char* op = "fpx_weight_only_linear";
  const ops::QLinearDims d = ops::check_fpx_weight(packed, scale, ebits, mbits, op);
  const int64_t k = d.k.expect_int();
  if (kern == nullptr || bits > 7 || !rows_byte_aligned(packed, k, bits))
    return fpx_weight_only_linear_ref(input, packed, scale, ebits, mbits, bias);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  std::array<float, 128> values{};
  for (int c = 0; c < (1 << bits); ++c)
    values[c] = core::fpx_decode_value(static_cast<uint8_t>(c), static_cast<int>(ebits), static_cast<int>(mbits));
  const at::Tensor pc = packed.contiguous();
  const at::Tensor sc = scale.contiguous();
  PackedWeight w = packed_rows(pc, pc.size(0), k, static_cast<int>(bits), QDecode::kFpx);
  w.row_scale = sc.const_data_ptr<float>();
  w.code_values = values.data();
  return finish(weight_only_acc(*kern, input, w), input, bias);
}

// A group-wise bit-packed weight (uintx, int4dq) the kernels can take: whole 32-code chunks per
// group and byte-aligned rows; else the reference runs.
bool groupwise_fast(const at::Tensor& packed, int64_t k, int64_t bits, int64_t group_size) {
  return group_size % vec::kCodeChunk == 0 && rows_byte_aligned(packed, k, bits);
}

// The contiguous parts of a group-wise weight stay alive in `keep` while `w` points into them.
PackedWeight groupwise_rows(const at::Tensor& packed, const at::Tensor& scale, const at::Tensor& zero_point,
                            int64_t k, int64_t bits, int64_t group_size, std::array<at::Tensor, 3>& keep) {
  keep = {packed.contiguous(), scale.contiguous(), zero_point.contiguous()};
  PackedWeight w = packed_rows(keep[0], keep[0].size(0), k, static_cast<int>(bits), QDecode::kUintx);
  w.group_scale = keep[1].const_data_ptr<float>();
  w.group_zero = keep[2].const_data_ptr<int32_t>();
  w.group_size = group_size;
  return w;
}

at::Tensor uintx_weight_only_linear_cpu(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                        const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                        const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  const char* op = "uintx_weight_only_linear";
  const ops::QLinearDims d = ops::check_packed_groupwise(packed, scale, zero_point, bits, group_size, op);
  const int64_t k = d.k.expect_int();
  if (kern == nullptr || !groupwise_fast(packed, k, bits, group_size))
    return uintx_weight_only_linear_ref(input, packed, scale, zero_point, bits, group_size, bias);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  std::array<at::Tensor, 3> keep;
  const PackedWeight w = groupwise_rows(packed, scale, zero_point, k, bits, group_size, keep);
  return finish(weight_only_acc(*kern, input, w), input, bias);
}

// int4dq: the reference's fake-quantized int8 activations (float32), then the weight-only kernels
// on its 4-bit weight (the uintx decode, in float32 as the reference dequantizes), and the
// reference's epilogue: bias added in float32, then the cast.
at::Tensor int8_dynamic_activation_int4_linear_cpu(const at::Tensor& input, const at::Tensor& packed,
                                                   const at::Tensor& scale, const at::Tensor& zero_point,
                                                   int64_t group_size, const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  const char* op = "int8_dynamic_activation_int4_linear";
  const ops::QLinearDims d = ops::check_packed_groupwise(packed, scale, zero_point, 4, group_size, op);
  const int64_t k = d.k.expect_int();
  if (kern == nullptr || !groupwise_fast(packed, k, 4, group_size))
    return int8_dynamic_activation_int4_linear_ref(input, packed, scale, zero_point, group_size, bias);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  std::array<at::Tensor, 3> keep;
  const PackedWeight w = groupwise_rows(packed, scale, zero_point, k, 4, group_size, keep);
  const at::Tensor x_fq = fake_quantize_int8_per_token(input.reshape({-1, k}));
  return unflatten_rows(add_bias(weight_only_acc(*kern, x_fq, w), bias).to(input.scalar_type()), input);
}

at::Tensor int8_dynamic_activation_int8_linear_cpu(const at::Tensor& input, const at::Tensor& weight,
                                                   const at::Tensor& weight_scale, const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  if (kern == nullptr || kern->qlinear_int8_gemm == nullptr)
    return int8_dynamic_activation_int8_linear_ref(input, weight, weight_scale, bias);
  const char* op = "int8_dynamic_activation_int8_linear";
  const ops::QLinearDims d = ops::check_int8_weight(weight, weight_scale, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  const at::Tensor x = input.reshape({-1, input.size(-1)});
  const int64_t m = x.size(0), k = x.size(1), n = weight.size(0);
  // The reference's per-token symmetric quantization (a NaN row gets a NaN scale: a NaN output row).
  auto [x_scale, x_zp] = core::choose_qparams_affine(x, {1, k}, "int8", "symmetric");
  const at::Tensor xq = core::quantize_affine(x, {1, k}, x_scale, x_zp, "int8");
  const int64_t kp = round_up(std::max<int64_t>(k, 1), 64);
  at::Tensor xqp = at::zeros({m, kp}, xq.options());
  xqp.narrow(1, 0, k).copy_(xq);
  const at::Tensor xsum = xq.sum(1, /*keepdim=*/false, at::kInt).contiguous();
  const at::Tensor wc = weight.contiguous();
  at::Tensor acc = at::empty({m, n}, x.options().dtype(at::kInt));
  if (m > 0 && n > 0) {
    const int8_t* xp = xqp.const_data_ptr<int8_t>();
    const int32_t* sp = xsum.const_data_ptr<int32_t>();
    const int8_t* wp = wc.const_data_ptr<int8_t>();
    int32_t* ap = acc.data_ptr<int32_t>();
    const int64_t grain = round_up(std::max<int64_t>(4, (int64_t{64} << 10) / std::max<int64_t>(k, 1)), 4);
    at::parallel_for(0, (n + 3) / 4, grain / 4, [&](int64_t b, int64_t e) {
      kern->qlinear_int8_gemm(xp, sp, m, kp, wp, k, 4 * b, std::min(n, 4 * e), ap, n);
    });
  }
  // The reference's epilogue, op for op.
  at::Tensor y = acc.to(at::kFloat).mul_(x_scale.reshape({-1, 1})).mul_(weight_scale.reshape({1, -1}));
  if (bias.has_value()) y.add_(bias->to(at::kFloat));
  return unflatten_rows(y.to(input.scalar_type()), input);
}

at::Tensor float8_dynamic_activation_linear_cpu(const at::Tensor& input, const at::Tensor& weight,
                                                const at::Tensor& weight_scale, c10::string_view granularity,
                                                const OptTensor& bias) {
  const vec::Kernels* kern = qlinear_kernels();
  if (kern == nullptr) return float8_dynamic_activation_linear_ref(input, weight, weight_scale, granularity, bias);
  const char* op = "float8_dynamic_activation_linear";
  TORCH_CHECK(granularity == "tensor" || granularity == "row", op, ": granularity must be 'tensor' or 'row', got '",
              granularity, "'");
  const ops::QLinearDims d = ops::check_float8_weight(weight, weight_scale, true, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  // The reference's activation cast, then its emulated scaled GEMM: float32 sums of the exact
  // float8 values (here decoded in the GEMV / tiles instead of converted whole), the scales
  // multiplied in float32, one rounding to the input dtype, then the bias.
  auto [xq, x_scale] = core::cast_to_float8(input.reshape({-1, input.size(-1)}), at::kFloat8_e4m3fn,
                                            std::string(granularity));
  const at::Tensor wc = weight.contiguous().view(at::kByte);
  const PackedWeight w = packed_rows(wc, wc.size(0), wc.size(1), 8,
                                     weight.scalar_type() == at::kFloat8_e4m3fn ? QDecode::kFloat8E4M3
                                                                                : QDecode::kFloat8E5M2);
  at::Tensor acc = weight_only_acc(*kern, xq.to(at::kFloat), w);
  const int64_t m = acc.size(0), n = acc.size(1);
  acc = acc * x_scale.reshape({x_scale.numel() == 1 ? 1 : m, 1}) *
        weight_scale.reshape({1, weight_scale.numel() == 1 ? 1 : n});
  return finish(acc, input, bias);
}

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("float8_dynamic_activation_linear", &float8_dynamic_activation_linear_cpu);
  m.impl("int8_weight_only_linear", &int8_weight_only_linear_cpu);
  m.impl("float8_weight_only_linear", &float8_weight_only_linear_cpu);
  m.impl("fpx_weight_only_linear", &fpx_weight_only_linear_cpu);
  m.impl("uintx_weight_only_linear", &uintx_weight_only_linear_cpu);
  m.impl("int8_dynamic_activation_int4_linear", &int8_dynamic_activation_int4_linear_cpu);
  m.impl("int8_dynamic_activation_int8_linear", &int8_dynamic_activation_int8_linear_cpu);
}

}  // namespace
}  // namespace lowbit::cpu
