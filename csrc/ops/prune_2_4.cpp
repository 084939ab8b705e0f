// Schema and shape (Meta) kernel of lowbit::prune_2_4.
#include <lowbit/core/prune_2_4.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/prune_2_4_checks.h>

namespace lowbit::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> prune_2_4_meta(const at::Tensor& x, c10::string_view algorithm) {
  check_prune_2_4_args(x, algorithm);
  return {at::empty_symint(x.sym_sizes(), x.options()), at::empty_symint(x.sym_sizes(), x.options().dtype(at::kBool))};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("prune_2_4(Tensor x, str algorithm=\"largest_abs\") -> (Tensor values, Tensor mask)");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl("prune_2_4", &prune_2_4_meta); }

}  // namespace lowbit::ops
