// lowbit::fake_quantized_linear: QAT's linear as one composite op (CompositeImplicitAutograd: it
// decomposes into lowbit::fake_quantize_affine, whose straight-through formula gives the gradient,
// and aten::linear), so both faces train through exactly the same numerics and torch.compile
// traces through it.
#include <ATen/ops/linear.h>
#include <torch/library.h>

#include <lowbit/core/fake_quantize.h>

namespace lowbit::ops {
namespace {

using Str = c10::string_view;

// Fake-quantizes `x` along its last dim in groups of `group_size` (0: the whole dim).
at::Tensor fake_quantize_last_dim(const at::Tensor& x, Str qdtype, int64_t group_size, bool symmetric, Str domain) {
  TORCH_CHECK(group_size >= 0, "fake_quantized_linear: group_size must be >= 0 (0: the whole last dim), got ",
              group_size);
  std::vector<int64_t> block(x.dim(), 1);
  block.back() = group_size == 0 ? x.size(-1) : group_size;
  return core::fake_quantize_affine(x, block, std::string(qdtype), symmetric ? "symmetric" : "asymmetric",
                                    std::string(domain));
}

at::Tensor fake_quantized_linear(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, Str w_qdtype, int64_t w_group, bool w_symmetric,
                                 Str w_domain, std::optional<Str> a_qdtype, int64_t a_group, bool a_symmetric,
                                 Str a_domain) {
  const at::Tensor w = fake_quantize_last_dim(weight.to(at::kFloat), w_qdtype, w_group, w_symmetric, w_domain);
  if (!a_qdtype) {  // weight-only: the GEMM runs in the activations' dtype
    return at::linear(input, w.to(input.scalar_type()), bias.has_value() ? *bias : at::Tensor());
  }
  const at::Tensor x = fake_quantize_last_dim(input.to(at::kFloat), *a_qdtype, a_group, a_symmetric, a_domain);
  at::Tensor y = at::linear(x, w);
  if (bias.has_value() && bias->defined()) y = y.add(bias->to(at::kFloat));
  return y.to(input.scalar_type());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("fake_quantized_linear(Tensor input, Tensor weight, Tensor? bias, str weight_qdtype, int weight_group_size, "
        "bool weight_symmetric, str weight_zero_point_domain, str? activation_qdtype=None, "
        "int activation_group_size=0, bool activation_symmetric=True, str activation_zero_point_domain=\"int\") "
        "-> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeImplicitAutograd, m) { m.impl("fake_quantized_linear", &fake_quantized_linear); }

}  // namespace lowbit::ops
