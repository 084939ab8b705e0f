// Uses lowbit from C++ through the installed package: a lowbit::nn::Linear, and the core
// float8 cast applied to its weight. Exits non-zero if the numbers are off.
#include <lowbit/lowbit.h>

#include <ATen/ops/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>

int main() {
  torch::manual_seed(0);
  lowbit::nn::Linear layer(64, 32);
  const at::Tensor x = torch::randn({8, 64});
  const at::Tensor y = layer->forward(x);

  // Row-wise e4m3 weight, dequantized: the output moves by a few percent at most.
  auto [data, scale] = lowbit::core::cast_to_float8(layer->weight.detach(), at::kFloat8_e4m3fn, "row");
  const at::Tensor y_fp8 = at::linear(x, data.to(at::kFloat) * scale, layer->bias.detach());
  const double rel = ((y_fp8 - y).norm() / y.norm()).item<double>();
  std::printf("lowbit %s | %s | fp8 e4m3 row-wise weight: relative output error %.4f\n",
              lowbit::version().c_str(), layer->method().name().c_str(), rel);
  return rel < 0.05 ? 0 : 1;
}
