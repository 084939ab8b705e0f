#include <lowbit/sparse/sparsify.h>

namespace lowbit::sparse {

nn::ConvertSummary sparsify_(torch::nn::Module& model, const quant::QuantizeConfig& config, nn::LinearFilter filter) {
  TORCH_CHECK(config.defined() && config.kind() == "SemiSparseWeightConfig", "sparsify_: config must be a sparsity "
              "config (SemiSparseWeightConfig), got ", config.defined() ? config.to_string() : "an empty config",
              "; quantized formats go through lowbit::inference::quantize_");
  inference::QuantizeOptions options;
  options.filter = std::move(filter);
  return inference::quantize_(model, config, options);
}

}  // namespace lowbit::sparse
