// lowbit::inference::quantize_ through the C++ API: every config and shorthand on a bf16
// two-layer MLP of lowbit::nn::Linear (output SQNR floors, exact packed bytes), layer
// selection, skips and errors. The SQNR floors are the Python suite's (tests/python/test_quantize.py
// explains them): int8 32 dB, int4 14, int8 x int4 14, float8 e4m3 22 / e5m2 19, fpX_eAmB 6 dB per
// mantissa bit (-1 for A = 1; 6 for m = 0, -3 for fp2_e1m0), uintB 6 dB per bit - 10.
#include <gtest/gtest.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <ATen/TensorOperators.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/randn.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include <lowbit/inference/quantize.h>
#include <lowbit/inference/quantized_linear_method.h>

#include "expect_error.h"

namespace {

using namespace lowbit;
using inference::QuantizeConfig;

constexpr int64_t K = 256, H = 512;

struct MlpImpl : torch::nn::Module {
  MlpImpl() {
    torch::manual_seed(0);
    fc1 = register_module("fc1", nn::Linear(K, H));
    fc2 = register_module("fc2", nn::Linear(H, K));
    torch::NoGradGuard no_grad;
    for (auto* lin : {fc1.get(), fc2.get()}) {
      lin->weight.normal_(0, 1.0 / std::sqrt(static_cast<double>(lin->options.in_features())));
    }
    to(at::kBFloat16);
  }
  at::Tensor forward(const at::Tensor& x) { return fc2->forward(at::gelu(fc1->forward(x))); }
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

double sqnr(const at::Tensor& ref, const at::Tensor& x) {
  const at::Tensor r = ref.to(at::kFloat), d = r - x.to(at::kFloat);
  return 10.0 * std::log10(r.pow(2).mean().item<double>() / std::max(d.pow(2).mean().item<double>(), 1e-30));
}

double sqnr_floor(const QuantizeConfig& c) {
  const std::string k = c.kind();
  if (k == "Int8WeightOnlyConfig" || k == "Int8DynamicActivationInt8WeightConfig") return 32.0;
  if (k == "Int4WeightOnlyConfig" || k == "Int8DynamicActivationInt4WeightConfig")
    return c.int_param("group_size") > 128 ? 12.0 : 14.0;
  if (k == "Float8WeightOnlyConfig") return c.dtype_param("dtype") == at::kFloat8_e5m2 ? 19.0 : 22.0;
  if (k == "Float8DynamicActivationFloat8WeightConfig") return 22.0;
  if (k == "FPXWeightOnlyConfig") {
    const int64_t e = c.int_param("ebits"), m = c.int_param("mbits");
    if (m == 0) return e == 1 ? -3.0 : 6.0;
    return 6.0 * m - (e == 1 ? 1.0 : 0.0);
  }
  if (k == "UIntXWeightOnlyConfig") return 6.0 * c.int_param("bits") - (c.int_param("group_size") > 64 ? 13.0 : 10.0);
  if (k == "SemiSparseWeightConfig") return 4.0;  // half of every group of 4 pruned: ~6 dB at the MLP's output
  return 1e9;
}

int64_t expected_bytes(const QuantizeConfig& c, int64_t n, int64_t k) {
  const std::string kind = c.kind();
  if (kind == "Int8WeightOnlyConfig" || kind == "Int8DynamicActivationInt8WeightConfig" ||
      kind == "Float8WeightOnlyConfig")
    return n * k + 4 * n;
  if (kind == "Int4WeightOnlyConfig") return n * k / 2 + (k / c.int_param("group_size")) * n * 4;
  if (kind == "Int8DynamicActivationInt4WeightConfig") return n * k / 2 + 8 * n * (k / c.int_param("group_size"));
  if (kind == "Float8DynamicActivationFloat8WeightConfig")
    return n * k + (c.string_param("granularity") == "row" ? 4 * n : 4);
  if (kind == "FPXWeightOnlyConfig") return n * k * (1 + c.int_param("ebits") + c.int_param("mbits")) / 8 + 4 * n;
  if (kind == "UIntXWeightOnlyConfig")
    return n * k * c.int_param("bits") / 8 + 8 * n * (k / c.int_param("group_size"));
  if (kind == "SemiSparseWeightConfig") return n * k / 2 * 2 + n * k / 8;  // bf16 kept values + 4-bit codes
  return -1;
}

const inference::QuantizedWeight& packed(const nn::Linear& lin) {
  auto* m = dynamic_cast<const inference::QuantizedLinearMethod*>(&lin->method());
  EXPECT_NE(m, nullptr);
  return m->weight();
}

at::Tensor sample_input() {
  torch::manual_seed(1);
  return at::randn({8, K}).to(at::kBFloat16);
}

TEST(Quantize, EveryShorthandMeetsItsSqnrFloor) {
  Mlp ref;
  const at::Tensor x = sample_input();
  torch::NoGradGuard no_grad;
  const at::Tensor y_ref = ref->forward(x);
  for (const std::string& name : inference::quantize_shorthands()) {
    SCOPED_TRACE(name);
    const QuantizeConfig config = inference::parse_quantize_config(name);
    Mlp q;
    const nn::ConvertSummary summary = inference::quantize_(*q, name);
    ASSERT_EQ(summary.converted.size(), 2u) << summary.to_string();
    EXPECT_EQ(q->fc1->method().name(), config.name());
    for (const auto* lin : {&q->fc1, &q->fc2}) {
      const auto& w = packed(*lin);
      EXPECT_EQ(w.nbytes(), expected_bytes(config, w.out_features, w.in_features));
    }
    EXPECT_GE(sqnr(y_ref, q->forward(x)), sqnr_floor(config));
  }
}

TEST(Quantize, Int4Group128IsWellUnderAThirdOfBf16) {
  Mlp q;
  inference::quantize_(*q, inference::Int4WeightOnlyConfig(128));
  const int64_t bytes = packed(q->fc1).nbytes() + packed(q->fc2).nbytes();
  EXPECT_LT(static_cast<double>(bytes) / (2.0 * 2 * K * H), 0.28);
}

TEST(Quantize, ReleasesTheFloatWeight) {
  Mlp q;
  const int64_t float_bytes = q->fc1->weight.nbytes();
  ASSERT_GT(float_bytes, 0);
  inference::quantize_(*q, "int8wo");
  EXPECT_EQ(q->fc1->weight.numel(), 0);  // the packed weight is the only copy
  EXPECT_EQ(q->fc1->weight.scalar_type(), at::kBFloat16);
  EXPECT_EQ(q->fc1->options.in_features(), K);
  int64_t param_bytes = 0;
  for (const auto& p : q->parameters()) param_bytes += p.nbytes();
  EXPECT_EQ(param_bytes, 2 * (H + K));  // only the bf16 biases remain as parameters
  torch::NoGradGuard no_grad;
  EXPECT_EQ(q->forward(sample_input()).size(1), K);
}

TEST(Quantize, DequantizedWeightReproducesTheForward) {
  Mlp q;
  inference::quantize_(*q, "uint4wo");
  torch::NoGradGuard no_grad;
  const at::Tensor x = sample_input();
  const at::Tensor w = inference::dequantize_weight(packed(q->fc1));
  EXPECT_TRUE(at::equal(q->fc1->forward(x), at::linear(x, w) + q->fc1->bias));  // bias after the GEMM
}

TEST(Quantize, UnknownShorthandListsTheValidNames) {
  Mlp q;
  try {
    inference::quantize_(*q, "int3wo");
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find("unknown config shorthand 'int3wo'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fp6_e3m2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("uint_a16w7"), std::string::npos) << msg;
  }
  EXPECT_EQ(q->fc1->method().name(), "plain");
}

TEST(Quantize, BadConfigsAreErrors) {
  EXPECT_THROW(inference::Int4WeightOnlyConfig(100), c10::Error);
  EXPECT_THROW(inference::FPXWeightOnlyConfig(4, 3), c10::Error);
  EXPECT_THROW(inference::UIntXWeightOnlyConfig(8), c10::Error);
  EXPECT_THROW(inference::Float8DynamicActivationFloat8WeightConfig("column"), c10::Error);
  EXPECT_THROW(inference::Float8WeightOnlyConfig(at::kBFloat16), c10::Error);
}

TEST(Quantize, FilterAndModulesToNotConvert) {
  Mlp q;
  inference::QuantizeOptions opts;
  opts.modules_to_not_convert = {"fc1"};
  auto summary = inference::quantize_(*q, "int8wo", opts);
  EXPECT_EQ(q->fc1->method().name(), "plain");
  EXPECT_EQ(q->fc2->method().name(), "int8wo");
  ASSERT_EQ(summary.skipped.size(), 1u);
  EXPECT_NE(summary.skipped[0].second.find("modules_to_not_convert"), std::string::npos);

  Mlp f;
  inference::QuantizeOptions by_filter;
  by_filter.filter = [](const std::string& name, const nn::LinearImpl&) { return name == "fc1"; };
  inference::quantize_(*f, inference::Int8DynamicActivationInt8WeightConfig(), by_filter);
  EXPECT_EQ(f->fc1->method().name(), "int8dq");
  EXPECT_EQ(f->fc2->method().name(), "plain");
}

TEST(Quantize, SkipsWhatItCannotConvertAndSaysWhy) {
  torch::nn::Module root;
  auto odd = root.register_module("odd", nn::Linear(96, 60));
  root.register_module("plain_torch", torch::nn::Linear(64, 64));
  auto summary = inference::quantize_(root, "int4wo");
  EXPECT_EQ(summary.converted.size(), 0u);
  ASSERT_EQ(summary.skipped.size(), 2u) << summary.to_string();
  EXPECT_NE(summary.to_string().find("tinygemm"), std::string::npos) << summary.to_string();
  EXPECT_NE(summary.to_string().find("torch::nn::Linear"), std::string::npos) << summary.to_string();
  EXPECT_EQ(odd->method().name(), "plain");
}

TEST(Quantize, FailureLeavesTheModelUntouched) {
  torch::nn::Module root;
  auto a = root.register_module("a", nn::Linear(64, 64));
  auto b = root.register_module("b", nn::Linear(64, 64));
  inference::QuantizeOptions on_meta;
  on_meta.device = c10::Device(c10::kMeta);  // tinygemm packing cannot run on meta
  EXPECT_THROW(inference::quantize_(root, "int4wo-32", on_meta), c10::Error);
  EXPECT_EQ(a->method().name(), "plain");
  EXPECT_EQ(b->method().name(), "plain");
  EXPECT_TRUE(a->bias.device().is_cpu());
}

TEST(Quantize, QuantizedWeightDescribesItself) {
  torch::manual_seed(2);
  const at::Tensor w = at::randn({64, 128});
  auto q4 = inference::quantize_weight(w, inference::Int4WeightOnlyConfig(64));
  EXPECT_EQ(q4.qdtype(), "uint4");
  EXPECT_EQ(q4.layout(), "tinygemm_int4");
  EXPECT_EQ(q4.zero_point_domain(), "float");
  EXPECT_EQ(q4.block_size(), (std::vector<int64_t>{1, 64}));
  auto qx = inference::quantize_weight(w, inference::UIntXWeightOnlyConfig(3, 32));
  EXPECT_EQ(qx.layout(), "bitpacked");
  EXPECT_EQ(qx.zero_point_domain(), "int");
  EXPECT_EQ(qx.data().sizes(), (std::vector<int64_t>{64, 128 * 3 / 8}));
  auto q8 = inference::quantize_weight(w, inference::Float8DynamicActivationFloat8WeightConfig("tensor"));
  EXPECT_EQ(q8.block_size(), (std::vector<int64_t>{64, 128}));
  EXPECT_FALSE(q8.zero_point().has_value());
  // Parts that do not fit the shape are rejected when rebuilding from saved parts.
  EXPECT_THROW(inference::quantized_weight_from_parts(qx.config, qx.parts, 64, 96, at::kFloat), c10::Error);
  EXPECT_THROW(inference::quantized_weight_from_parts(qx.config, {qx.parts[0]}, 64, 128, at::kFloat), c10::Error);
}

// A hand-assembled weight with a part missing is an error naming the parts (the formats read their
// parts by position: without the check each would read past the list).
TEST(Quantize, HandAssembledWeightWithMissingPartsIsAnError) {
  torch::manual_seed(3);
  for (const char* name : {"int8wo", "uint3wo-32", "int4wo-64", "float8dq_e4m3_row", "fp6_e3m2"}) {
    auto q = inference::quantize_weight(at::randn({64, 128}), inference::parse_quantize_config(name));
    q.parts.pop_back();
    const at::Tensor x = at::randn({2, 128});
    expect_error([&] { inference::quantized_linear(x, q); }, "quantized_linear: quantized weight");
    expect_error([&] { inference::dequantize_weight(q); }, "dequantize_weight: quantized weight");
    expect_error([&] { q.scale(); }, "(qdata, ");
    expect_error([&] { inference::convert_quantized_weight(q, at::kBFloat16, at::kCPU); }, "convert_quantized_weight");
  }
}

}  // namespace

// ---- save_quantized / load_quantized ---------------------------------------------------------

#include <lowbit/inference/serialization.h>

#include <cstdio>
#include <fstream>

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lowbit_test_quantize_" + name)).string();
}

TEST(QuantizeSerialization, RoundTripIsExactForEveryFormat) {
  const at::Tensor x = sample_input();
  torch::NoGradGuard no_grad;
  for (const char* name : {"int4wo", "int8wo", "int8dq", "int4dq", "float8wo_e5m2", "float8dq_e4m3_row", "fp6_e3m2",
                           "uint3wo"}) {
    SCOPED_TRACE(name);
    Mlp q;
    inference::quantize_(*q, name);
    const std::string path = temp_path(std::string(name) + ".safetensors");
    inference::save_quantized(*q, path);
    torch::manual_seed(42);
    Mlp fresh;
    fresh->fc1->bias.normal_();
    inference::load_quantized(*fresh, path);
    EXPECT_EQ(fresh->fc1->method().name(), q->fc1->method().name());
    EXPECT_TRUE(at::equal(fresh->forward(x), q->forward(x)));
    std::remove(path.c_str());
  }
}

TEST(QuantizeSerialization, BadFilesAreErrorsAndLeaveTheModelUntouched) {
  Mlp q;
  inference::quantize_(*q, "int8wo");
  const std::string path = temp_path("bad.safetensors");
  inference::save_quantized(*q, path);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto expect_rejected = [&](const std::string& contents, torch::nn::Module& model, nn::LinearImpl& layer) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << contents;
    }
    const at::Tensor bias = layer.bias.clone();
    EXPECT_THROW(inference::load_quantized(model, path), c10::Error);
    EXPECT_EQ(layer.method().name(), "plain");
    EXPECT_TRUE(at::equal(layer.bias, bias));
  };
  Mlp target;
  for (size_t cut : {size_t{3}, size_t{30}, bytes.size() / 2, bytes.size() - 1}) {
    SCOPED_TRACE(cut);
    expect_rejected(bytes.substr(0, cut), *target, *target->fc1);
  }
  // Hostile header length.
  expect_rejected(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10), *target, *target->fc1);
  // A model whose layers do not match the file.
  torch::nn::Module other;
  auto small = other.register_module("fc1", nn::Linear(K, 64));
  other.register_module("fc2", nn::Linear(64, K));
  expect_rejected(bytes, other, *small);
  std::remove(path.c_str());
}

}  // namespace

// ---- gradients through quantized layers, torch::save / torch::load, names -------------------

#include <ATen/ops/matmul.h>
#include <torch/serialize.h>

namespace {

// Every format passes a straight-through gradient to its input: grad_input = grad @ dequant(W),
// and to the bias; packed parts that require grad are an error, not a silently missing gradient.
TEST(QuantizeGradients, EveryFormatPassesAGradientToItsInput) {
  for (const char* name : {"int4wo", "int8wo", "int8dq", "int4dq", "float8wo_e4m3", "float8dq_e4m3_tensor",
                           "float8dq_e4m3_row", "fp6_e3m2", "uint3wo"}) {
    SCOPED_TRACE(name);
    Mlp q;
    inference::quantize_(*q, name);
    const auto& w = packed(q->fc2);
    const at::Tensor x = sample_input().requires_grad_(true);
    q->fc2->bias.requires_grad_(true);
    const at::Tensor y = q->fc2->forward(at::gelu(x.matmul(at::randn({K, H}).to(at::kBFloat16))));
    const at::Tensor g = at::randn_like(y);
    y.backward(g);
    ASSERT_TRUE(x.grad().defined());
    EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
    ASSERT_TRUE(q->fc2->bias.grad().defined());
    EXPECT_TRUE(at::allclose(q->fc2->bias.grad().to(at::kFloat), g.to(at::kFloat).sum(0), 1e-2, 1e-2));
    // Directly: grad_input of one layer is grad @ dequant(W).
    const at::Tensor h = at::randn({3, H}).to(at::kBFloat16).requires_grad_(true);
    const at::Tensor out = q->fc2->forward(h);
    const at::Tensor go = at::randn_like(out);
    out.backward(go);
    const at::Tensor expected = at::matmul(go.to(at::kFloat), inference::dequantize_weight(w).to(at::kFloat));
    EXPECT_TRUE(at::allclose(h.grad().to(at::kFloat), expected, 2e-2, 2e-2));
  }
}

TEST(QuantizeGradients, PackedPartsThatRequireGradAreAnError) {
  const auto w = inference::quantize_weight(at::randn({64, 64}), inference::Int8WeightOnlyConfig());
  std::vector<at::Tensor> parts = w.parts;
  parts[1] = parts[1].clone().requires_grad_(true);
  inference::QuantizedWeight bad = w;
  bad.parts = parts;
  expect_error([&] { inference::quantized_linear(at::randn({2, 64}), bad); }, "frozen");
}

TEST(QuantizeSerialization, TorchSaveAndLoadRoundTripAQuantizedModel) {
  const at::Tensor x = sample_input();
  torch::NoGradGuard no_grad;
  for (const char* name : {"int8wo", "int4wo", "uint3wo"}) {
    SCOPED_TRACE(name);
    Mlp q;
    inference::quantize_(*q, name);
    const std::string path = temp_path(std::string("torch_save_") + name + ".pt");
    torch::save(q, path);
    Mlp fresh;  // a float model: loading makes it the quantized one that was saved
    torch::load(fresh, path);
    EXPECT_EQ(fresh->fc1->method().name(), q->fc1->method().name());
    EXPECT_TRUE(at::equal(fresh->forward(x), q->forward(x)));
    // A float checkpoint loaded into a quantized model restores the float layers.
    Mlp plain;
    torch::save(plain, path);
    torch::load(q, path);
    EXPECT_EQ(q->fc1->method().name(), "plain");
    EXPECT_TRUE(at::equal(q->forward(x), plain->forward(x)));
    std::remove(path.c_str());
  }
}

TEST(Quantize, CanonicalNamesOfEveryParameterValueParse) {
  for (const auto& config : {inference::UIntXWeightOnlyConfig(3, 48), inference::Int8DynamicActivationInt4WeightConfig(16),
                             inference::Int4WeightOnlyConfig(64), inference::FPXWeightOnlyConfig(2, 3)}) {
    SCOPED_TRACE(config.name());
    EXPECT_EQ(inference::parse_quantize_config(config.name()), config);
    const auto params = config.params();
    EXPECT_EQ(inference::make_quantize_config(config.kind(), {params.begin(), params.end()}), config);
  }
  expect_error([] { inference::make_quantize_config("UIntXWeightOnlyConfig", {{"bitz", int64_t{3}}}); },
               "missing required parameter 'bits'");
  expect_error([] { inference::make_quantize_config("UIntXWeightOnlyConfig", {{"bits", int64_t{3}}, {"group", int64_t{3}}}); },
               "unknown parameter 'group'");
  expect_error([] { inference::make_quantize_config("Int5Config"); }, "allowed: Int4WeightOnlyConfig");
}

TEST(Quantize, ShapesTinygemmCannotPackAreSkippedNotCrashed) {
  torch::nn::Module root;
  auto thin = root.register_module("thin", nn::Linear(256, 8));  // aten's CPU int4 packer needs more rows
  auto ok = root.register_module("ok", nn::Linear(256, 64));
  const auto summary = inference::quantize_(root, "int4wo-32");
  EXPECT_EQ(thin->method().name(), "plain");
  EXPECT_EQ(ok->method().name(), "int4wo-32");
  EXPECT_NE(summary.to_string().find("tinygemm"), std::string::npos) << summary.to_string();
}

}  // namespace
