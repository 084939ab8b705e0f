// Schema and shape (Meta) kernel of lowbit::scaled_mm.
#include <lowbit/core/scaled_mm.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/scaled_mm_checks.h>

namespace lowbit::ops {
namespace {

at::Tensor scaled_mm_meta(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                          const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                          std::optional<at::ScalarType> out_dtype, bool use_fast_accum, bool emulate) {
  const at::ScalarType out = check_scaled_mm_args(a, b, scale_a, scale_b, bias, out_dtype);
  return at::empty_symint({a.sym_size(0), b.sym_size(1)}, a.options().dtype(out));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("scaled_mm(Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, Tensor? bias=None, "
        "ScalarType? out_dtype=None, bool use_fast_accum=False, bool emulate=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl("scaled_mm", &scaled_mm_meta); }

}  // namespace lowbit::ops
