// autoquant's per-layer measurement as a dispatcher op, so the Python face (lowbit.autoquant)
// times candidates with exactly the C++ loop and reads the result as the plan's layer JSON.
#include <torch/library.h>

#include <lowbit/inference/autoquant.h>

namespace lowbit::inference {
namespace {

std::string autoquant_layer_op(c10::string_view name, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               at::TensorList inputs, at::IntArrayRef counts,
                               // Owned strings: c10 frees the boxed list before the call, so a
                               // std::vector<c10::string_view> here would hold dangling views.
                               std::vector<std::string> candidates,
                               std::optional<double> min_sqnr, bool include_unquantized, int64_t warmup, int64_t iters) {
  AutoquantOptions options;
  options.candidates = std::move(candidates);
  options.min_sqnr = min_sqnr;
  options.include_unquantized = include_unquantized;
  options.warmup = static_cast<int>(warmup);
  options.iters = static_cast<int>(iters);
  return autoquant_layer_to_json(autoquant_layer(std::string(name), weight, bias, inputs.vec(), counts.vec(), options));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("autoquant_layer(str name, Tensor weight, Tensor? bias, Tensor[] inputs, int[] counts, str[] candidates, "
        "float? min_sqnr=None, bool include_unquantized=True, int warmup=2, int iters=10) -> str");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) { m.impl("autoquant_layer", &autoquant_layer_op); }

}  // namespace lowbit::inference
