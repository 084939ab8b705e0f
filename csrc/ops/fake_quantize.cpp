// lowbit::fake_quantize_affine: schema, the composite forward (CompositeExplicitAutograd: the
// definition, and the kernel of every device without its own; the CPU has a fused one in
// csrc/cpu/fake_quantize.cpp), Meta kernel and the straight-through-estimator autograd formula
// (Autograd key).
#include <lowbit/ops/fake_quantize.h>

#include <lowbit/core/fake_quantize.h>

#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <lowbit/core/affine.h>
#include <lowbit/ops/affine_checks.h>
#include <lowbit/ops/dispatch.h>

namespace lowbit::ops {

at::Tensor fake_quantize_composite(const at::Tensor& input, at::IntArrayRef block_size, c10::string_view qdtype,
                                   c10::string_view mapping, c10::string_view zero_point_domain) {
  parse_fake_quantize_args(input, block_size, qdtype, mapping, zero_point_domain);
  const std::string qd(qdtype), dom(zero_point_domain);
  const at::Tensor x = input.to(at::kFloat);
  auto [scale, zp] = core::choose_qparams_affine(x, block_size, qd, std::string(mapping), dom);
  const at::Tensor q = core::quantize_affine(x, block_size, scale, zp, qd, dom);
  return core::dequantize_affine(q, block_size, scale, zp, qd, dom, input.scalar_type());
}

namespace {

at::Tensor fake_quantize_meta(const at::Tensor& input, at::IntArrayRef block_size, c10::string_view qdtype,
                              c10::string_view mapping, c10::string_view zero_point_domain) {
  parse_fake_quantize_args(input, block_size, qdtype, mapping, zero_point_domain);
  return at::empty_symint(input.sym_sizes(), input.options());
}

class FakeQuantizeFunction : public torch::autograd::Function<FakeQuantizeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            at::IntArrayRef block_size, c10::string_view qdtype, c10::string_view mapping,
                            c10::string_view zero_point_domain) {
    // Below autograd, through the dispatcher: the device's own kernel (the CPU's fused one).
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = find_op<at::Tensor(const at::Tensor&, at::IntArrayRef, c10::string_view, c10::string_view,
                                        c10::string_view)>("lowbit::fake_quantize_affine");
    return op.call(input, block_size, qdtype, mapping, zero_point_domain);
  }
  // Straight-through: rounding and clamping pass the gradient unchanged.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {grads[0], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor fake_quantize_autograd(const at::Tensor& input, at::IntArrayRef block_size, c10::string_view qdtype,
                                  c10::string_view mapping, c10::string_view zero_point_domain) {
  return FakeQuantizeFunction::apply(input, block_size, qdtype, mapping, zero_point_domain);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("fake_quantize_affine(Tensor input, int[] block_size, str qdtype, str mapping=\"symmetric\", "
        "str zero_point_domain=\"int\") -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) { m.impl("fake_quantize_affine", &fake_quantize_composite); }
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl("fake_quantize_affine", &fake_quantize_meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl("fake_quantize_affine", &fake_quantize_autograd); }

}  // namespace lowbit::ops
