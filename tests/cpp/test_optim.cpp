// lowbit::optim::AdamW8bit / AdamW4bit / AdamWFp8 (the C++ face): the checks of
// tests/python/test_optim.py — loss parity with torch::optim::AdamW on a classifier MLP and a
// tiny transformer LM on Debian's fortunes, state bytes per parameter, bit-exact resume through
// torch::save / torch::load and through save_state / load_state, clear errors — plus the C++
// half of the cross-face test (OptimCrossFace, driven by test_optim.py).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/transformerlayer.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/optim/schedulers/step_lr.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>

#include <lowbit/io/safetensors.h>
#include "expect_error.h"
#include <lowbit/optim/adamw_lowbit.h>
#include <lowbit/optim/state_file.h>

namespace {

namespace F = torch::nn::functional;
using lowbit::optim::AdamWLowBit;
using lowbit::optim::AdamWLowBitOptions;
using torch::optim::OptimizerParamGroup;

const std::vector<std::string> kFormats = {"8bit", "4bit", "fp8"};

// Relative tolerance on the final loss against AdamW's (as in test_optim.py).
double loss_tolerance(const std::string& fmt) { return fmt == "4bit" ? 0.05 : 0.02; }

std::unique_ptr<AdamWLowBit> make_lowbit(const std::string& fmt, const std::vector<OptimizerParamGroup>& groups,
                                         std::function<void(AdamWLowBitOptions&)> tweak = nullptr) {
  AdamWLowBitOptions o = lowbit::optim::AdamW8bitOptions();
  if (fmt == "4bit") o = lowbit::optim::AdamW4bitOptions();
  if (fmt == "fp8") o = lowbit::optim::AdamWFp8Options();
  if (tweak) tweak(o);
  if (fmt == "8bit") return std::make_unique<lowbit::optim::AdamW8bit>(groups, o);
  if (fmt == "4bit") return std::make_unique<lowbit::optim::AdamW4bit>(groups, o);
  return std::make_unique<lowbit::optim::AdamWFp8>(groups, o);
}

// "adamw" is torch::optim::AdamW; otherwise a lowbit optimizer with default options.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& fmt, std::vector<at::Tensor> params,
                                                        double lr) {
  if (fmt == "adamw") return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr));
  return make_lowbit(fmt, {OptimizerParamGroup(params)}, [&](AdamWLowBitOptions& o) { o.lr(lr); });
}

// Runs the small training tests on one thread: their matrices are too small to gain from two,
// and on a shared 2-core machine OpenMP's spinning workers slow them down about tenfold.
struct SingleThread {
  int saved = at::get_num_threads();
  SingleThread() { at::set_num_threads(1); }
  ~SingleThread() { at::set_num_threads(saved); }
};

// ---- classifier MLP -----------------------------------------------------------------------------

double train_mlp(const std::string& fmt, int steps = 120) {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(32, 256), torch::nn::GELU(), torch::nn::Linear(256, 256),
                              torch::nn::GELU(), torch::nn::Linear(256, 8));
  auto opt = make_optimizer(fmt, model->parameters(), 2e-3);
  torch::manual_seed(1);
  const at::Tensor centers = torch::randn({8, 32});  // noisy classes: the loss plateaus near 0.5
  const at::Tensor y = torch::randint(0, 8, {2048});
  const at::Tensor x = centers.index_select(0, y) + torch::randn({2048, 32}) * 3.0;
  for (int s = 0; s < steps; ++s) {
    const at::Tensor i = torch::randint(0, 2048, {128});
    const at::Tensor loss = F::cross_entropy(model->forward(x.index_select(0, i)), y.index_select(0, i));
    opt->zero_grad();
    loss.backward();
    opt->step();
  }
  torch::NoGradGuard no_grad;
  return F::cross_entropy(model->forward(x), y).item<double>();
}

TEST(Optim, MlpClassifierReachesAdamWLoss) {
  SingleThread single_thread;
  const double ref = train_mlp("adamw");
  for (const auto& fmt : kFormats) {
    const double ours = train_mlp(fmt);
    std::cout << "MLP final loss: AdamW " << ref << ", " << fmt << " " << ours << "\n";
    EXPECT_LE(std::abs(ours - ref), loss_tolerance(fmt) * ref) << fmt;
  }
}

// ---- tiny transformer LM on fortunes -----------------------------------------------------------

// The plain fortune files (not .dat / .u8) in name order, as bytes; empty when absent.
at::Tensor fortunes_bytes(size_t max_bytes) {
  namespace fs = std::filesystem;
  const fs::path dir = "/usr/share/games/fortunes";
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_symlink() && e.is_regular_file() && ext != ".dat" && ext != ".u8") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::string data;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    data.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (data.size() >= max_bytes) break;
  }
  data.resize(std::min(data.size(), max_bytes));
  at::Tensor t = torch::empty({static_cast<int64_t>(data.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), data.data(), data.size());
  return t.to(torch::kLong);
}

// Byte-level causal transformer: 2 layers, d = 64, 4 heads, context 32 (as test_optim.py).
struct TinyLMImpl : torch::nn::Module {
  static constexpr int64_t kD = 64, kCtx = 32;
  torch::nn::Embedding emb{256, kD};
  at::Tensor pos;
  torch::nn::TransformerEncoderLayer layer1{torch::nn::TransformerEncoderLayerOptions(kD, 4).dim_feedforward(4 * kD).dropout(0.0)};
  torch::nn::TransformerEncoderLayer layer2{torch::nn::TransformerEncoderLayerOptions(kD, 4).dim_feedforward(4 * kD).dropout(0.0)};
  torch::nn::LayerNorm norm{torch::nn::LayerNormOptions({kD})};
  torch::nn::Linear head{kD, 256};
  at::Tensor mask;

  TinyLMImpl() {
    register_module("emb", emb);
    pos = register_parameter("pos", torch::randn({kCtx, kD}) * 0.02);
    register_module("layer1", layer1);
    register_module("layer2", layer2);
    register_module("norm", norm);
    register_module("head", head);
    mask = torch::full({kCtx, kCtx}, -INFINITY).triu(1);
  }
  at::Tensor forward(const at::Tensor& x) {  // x: (batch, ctx)
    at::Tensor h = (emb->forward(x) + pos).transpose(0, 1);  // (ctx, batch, d)
    h = layer2->forward(layer1->forward(h, mask), mask);
    return head->forward(norm->forward(h.transpose(0, 1)));
  }
};
TORCH_MODULE(TinyLM);

std::pair<at::Tensor, at::Tensor> lm_batch(const at::Tensor& text, int64_t batch) {
  const at::Tensor i = torch::randint(0, text.size(0) - TinyLMImpl::kCtx - 1, {batch, 1});
  const at::Tensor chunk = text.index({i + torch::arange(TinyLMImpl::kCtx + 1)});
  return {chunk.narrow(1, 0, TinyLMImpl::kCtx), chunk.narrow(1, 1, TinyLMImpl::kCtx)};
}

double train_lm(const std::string& fmt, const at::Tensor& text, int steps = 150) {
  const int64_t split = text.size(0) * 9 / 10;
  const at::Tensor train = text.narrow(0, 0, split), val = text.narrow(0, split, text.size(0) - split);
  torch::manual_seed(0);
  TinyLM model;
  auto opt = make_optimizer(fmt, model->parameters(), 3e-3);
  torch::manual_seed(1);
  for (int s = 0; s < steps; ++s) {
    for (auto& g : opt->param_groups()) g.options().set_lr(3e-3 * std::min(1.0, (s + 1) / 20.0));  // warmup
    const auto [x, y] = lm_batch(train, 16);
    const at::Tensor loss = F::cross_entropy(model->forward(x).flatten(0, 1), y.flatten());
    opt->zero_grad();
    loss.backward();
    opt->step();
  }
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  double total = 0;
  for (int k = 0; k < 8; ++k) {
    const auto [x, y] = lm_batch(val, 32);
    total += F::cross_entropy(model->forward(x).flatten(0, 1), y.flatten()).item<double>() / 8;
  }
  return total;
}

TEST(Optim, TinyTransformerOnFortunesReachesAdamWLoss) {
  const at::Tensor text = fortunes_bytes(1 << 19);
  SingleThread single_thread;
  if (text.numel() < 10000) GTEST_SKIP() << "no fortune files in /usr/share/games/fortunes (apt-get install fortunes)";
  const double ref = train_lm("adamw", text);
  for (const auto& fmt : kFormats) {
    const double ours = train_lm(fmt, text);
    std::cout << "LM held-out loss: AdamW " << ref << ", " << fmt << " " << ours << "\n";
    EXPECT_LT(ours, std::log(256.0) * 0.7) << fmt;
    EXPECT_LE(std::abs(ours - ref), loss_tolerance(fmt) * ref) << fmt;
  }
}

// ---- state size ------------------------------------------------------------------------------

TEST(Optim, StateBytesPerParameter) {
  for (const auto& fmt : kFormats) {
    at::Tensor p = torch::zeros({2048, 2048}).requires_grad_();
    p.mutable_grad() = torch::randn({2048, 2048});
    auto opt = make_lowbit(fmt, {OptimizerParamGroup({p})});
    opt->step();
    const auto& s = static_cast<const lowbit::optim::AdamWLowBitParamState&>(*opt->state().at(p.unsafeGetTensorImpl()));
    const double bytes = static_cast<double>(s.step().nbytes() + s.exp_avg().nbytes() + s.exp_avg_scale().nbytes() +
                                             s.exp_avg_sq().nbytes() + s.exp_avg_sq_scale().nbytes());
    const double per_param = bytes / static_cast<double>(p.numel());
    std::cout << fmt << ": " << per_param << " bytes of state per parameter\n";
    EXPECT_LE(per_param, fmt == "4bit" ? 1.1 : 2.1) << fmt;
  }
}

// ---- non-finite gradients ------------------------------------------------------------------------

// One inf, -inf, NaN and overflowing ((1 - beta2) g^2 = inf) gradient element, then three normal
// steps, as test_optim.py::test_non_finite_gradients_stay_in_their_element: exactly torch's NaN
// elements are NaN; the bad elements' block neighbours stay as close to torch as the clean blocks.
at::Tensor run_with_bad_gradients(const std::string& fmt, std::vector<int64_t> shape, double lr) {
  torch::manual_seed(0);
  at::Tensor p = torch::randn(shape).requires_grad_();
  auto opt = make_optimizer(fmt, {p}, lr);
  torch::manual_seed(5);
  for (int step = 0; step < 4; ++step) {
    at::Tensor g = torch::randn(shape);
    if (step == 0) {
      at::Tensor flat = g.view({-1});
      flat[100] = INFINITY;
      flat[600] = -INFINITY;
      flat[1100] = NAN;
      flat[1700] = 1e30;
    }
    p.mutable_grad() = g;
    opt->step();
  }
  return p.detach().view({-1});
}

TEST(Optim, NonFiniteGradientsStayInTheirElement) {
  const double lr = 1e-2;
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{256, 512}, std::vector<int64_t>{40, 50}}) {
    const at::Tensor ref = run_with_bad_gradients("adamw", shape, lr);
    EXPECT_EQ(ref.isnan().sum().item<int64_t>(), 3);
    for (const auto& fmt : kFormats) {
      SCOPED_TRACE(fmt + " " + std::to_string(shape[0]) + "x" + std::to_string(shape[1]));
      const at::Tensor ours = run_with_bad_gradients(fmt, shape, lr);
      EXPECT_TRUE(torch::equal(ours.isnan(), ref.isnan()));
      const at::Tensor err = (ours - ref).abs();
      at::Tensor clean = ~ref.isnan(), near = torch::zeros_like(clean);
      for (int64_t i : {100, 600, 1100, 1700}) {
        clean.narrow(0, i / 256 * 256, 256).fill_(false);
        near.narrow(0, i / 256 * 256, 256).fill_(true);
      }
      near &= ~ref.isnan();
      near[1700] = false;
      const double clean_err = err.masked_select(clean).max().item<double>();
      const double near_err = err.masked_select(near).max().item<double>();
      std::cout << fmt << ": clean max err " << clean_err << ", bad blocks' other elements " << near_err
                << ", overflowing element " << err[1700].item<double>() << "\n";
      EXPECT_TRUE(torch::isfinite(ours.masked_select(~ref.isnan())).all().item<bool>());
      EXPECT_LE(near_err, 1.5 * clean_err + 1e-6);
      EXPECT_LE(err[1700].item<double>(), 4 * lr);
    }
  }
}

// ---- save / load -----------------------------------------------------------------------------

// fp32 quantized, fp32 small, bf16 quantized; mirrors make_params in test_optim.py.
std::vector<at::Tensor> make_params() {
  torch::manual_seed(0);
  return {torch::randn({128, 96}).requires_grad_(), torch::randn({100}).requires_grad_(),
          torch::randn({64, 80}).to(torch::kBFloat16).requires_grad_()};
}

// Two groups as make_opt in test_optim.py: lr 1e-2, weight decay 0.05; the bf16 group lr 5e-3
// with stochastic rounding.
std::unique_ptr<AdamWLowBit> make_opt(const std::string& fmt, const std::vector<at::Tensor>& params) {
  auto opt = make_lowbit(fmt, {OptimizerParamGroup({params[0], params[1]})}, [](AdamWLowBitOptions& o) {
    o.lr(1e-2).weight_decay(0.05);
  });
  auto second = std::make_unique<AdamWLowBitOptions>(static_cast<const AdamWLowBitOptions&>(opt->defaults()));
  second->lr(5e-3).bf16_stochastic_round(true);
  opt->add_param_group(OptimizerParamGroup({params[2]}, std::move(second)));
  return opt;
}

void run_steps(AdamWLowBit& opt, const std::vector<at::Tensor>& params, int from, int to) {
  for (int s = from; s < to; ++s) {
    torch::manual_seed(100 + s);
    for (const auto& p : params) p.mutable_grad() = torch::randn(p.sizes()).to(p.scalar_type());
    opt.step();
  }
}

void copy_params(const std::vector<at::Tensor>& from, const std::vector<at::Tensor>& to) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         std::memcmp(a.const_data_ptr(), b.const_data_ptr(), a.nbytes()) == 0;
}

void expect_same(AdamWLowBit& a, const std::vector<at::Tensor>& pa, AdamWLowBit& b, const std::vector<at::Tensor>& pb) {
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
    const auto& sa = static_cast<const lowbit::optim::AdamWLowBitParamState&>(*a.state().at(pa[i].unsafeGetTensorImpl()));
    const auto& sb = static_cast<const lowbit::optim::AdamWLowBitParamState&>(*b.state().at(pb[i].unsafeGetTensorImpl()));
    EXPECT_TRUE(same_bytes(sa.step(), sb.step()));
    EXPECT_TRUE(same_bytes(sa.exp_avg(), sb.exp_avg())) << i;
    EXPECT_TRUE(same_bytes(sa.exp_avg_scale(), sb.exp_avg_scale())) << i;
    EXPECT_TRUE(same_bytes(sa.exp_avg_sq(), sb.exp_avg_sq())) << i;
    EXPECT_TRUE(same_bytes(sa.exp_avg_sq_scale(), sb.exp_avg_sq_scale())) << i;
  }
}

TEST(Optim, SaveLoadThenContinueEqualsUninterrupted) {
  const std::string dir = ::testing::TempDir();
  for (const auto& fmt : kFormats) {
    for (const bool archive : {true, false}) {
      auto params = make_params();
      auto opt = make_opt(fmt, params);
      run_steps(*opt, params, 0, 6);

      auto params2 = make_params();
      auto opt2 = make_opt(fmt, params2);
      run_steps(*opt2, params2, 0, 3);
      const std::string path = dir + "/lowbit_optim_" + fmt + (archive ? ".pt" : ".safetensors");
      auto params3 = make_params();
      auto opt3 = make_opt(fmt, params3);
      static_cast<AdamWLowBitOptions&>(opt3->param_groups()[1].options()).lr(123.0);  // load restores it
      if (archive) {
        torch::save(*opt2, path);
        torch::load(*opt3, path);
      } else {
        lowbit::optim::save_state(*opt2, path);
        lowbit::optim::load_state(*opt3, path);
      }
      std::remove(path.c_str());
      copy_params(params2, params3);
      EXPECT_EQ(static_cast<AdamWLowBitOptions&>(opt3->param_groups()[1].options()).lr(), 5e-3);
      run_steps(*opt3, params3, 3, 6);
      SCOPED_TRACE(fmt + (archive ? " torch::save" : " save_state"));
      expect_same(*opt, params, *opt3, params3);
    }
  }
}

TEST(Optim, LoadStateRejectsMismatches) {
  auto params = make_params();
  auto opt = make_opt("8bit", params);
  run_steps(*opt, params, 0, 1);
  const std::string path = ::testing::TempDir() + "/lowbit_optim_mismatch.safetensors";
  lowbit::optim::save_state(*opt, path);
  auto other = make_opt("4bit", make_params());
  EXPECT_THROW(lowbit::optim::load_state(*other, path), c10::Error);
  auto transposed = make_params();
  transposed[0] = torch::randn({128, 97}).requires_grad_();
  auto opt_t = make_opt("8bit", transposed);
  try {
    lowbit::optim::load_state(*opt_t, path);
    ADD_FAILURE() << "a state of another shape loaded";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(opt_t->state().empty());  // a failed load changes nothing
  std::remove(path.c_str());
}

// The Python face writes through the manifest (optim_save_state); a file that goes through it
// comes out byte for byte as the C++ face wrote it.
TEST(Optim, StateFileManifestRoundTripsExactly) {
  auto params = make_params();
  auto opt = make_opt("4bit", params);
  run_steps(*opt, params, 0, 2);
  const std::string dir = ::testing::TempDir();
  const std::string a = dir + "/lowbit_optim_a.safetensors", b = dir + "/lowbit_optim_b.safetensors";
  lowbit::optim::save_state(*opt, a);
  const lowbit::optim::StateFile file = lowbit::optim::read_state_file(a);
  const std::string manifest = lowbit::optim::state_file_manifest(file);
  lowbit::optim::write_state_file(b, lowbit::optim::state_file_from_manifest(manifest, lowbit::optim::state_file_tensors(file)));
  auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(bytes(a), bytes(b));
  EXPECT_NE(manifest.find("\"betas\":[0.9,0.999]"), std::string::npos) << manifest;
  std::remove(a.c_str());
  std::remove(b.c_str());
  expect_error([&] { lowbit::optim::load_state(*opt, dir + "/no_such_file.safetensors"); }, "cannot read");
}

TEST(Optim, LrSchedulerAndPerGroupLr) {
  auto params = make_params();
  auto opt = make_opt("4bit", params);
  torch::optim::StepLR sched(*opt, /*step_size=*/1, /*gamma=*/0.0);
  run_steps(*opt, params, 0, 1);
  sched.step();  // LibTorch's StepLR changes nothing on its first call
  sched.step();  // lr 0 for every group from now on
  std::vector<at::Tensor> before;
  for (const auto& p : params) before.push_back(p.detach().clone());
  run_steps(*opt, params, 1, 3);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i])) << i;
}

TEST(Optim, StepBumpsTheParametersAutogradVersion) {
  at::Tensor p = torch::randn({5000}).requires_grad_();
  p.mutable_grad() = torch::randn({5000});
  const auto before = p._version();
  lowbit::optim::AdamW8bit opt({p});
  opt.step();
  EXPECT_GT(p._version(), before);
}

TEST(Optim, SparseAndComplexGradientsAreClearErrors) {
  at::Tensor p = torch::zeros({5000, 4}).requires_grad_();
  p.mutable_grad() = torch::zeros({5000, 4}).to_sparse();
  lowbit::optim::AdamW8bit opt({p});
  try {
    opt.step();
    ADD_FAILURE() << "no error for a sparse gradient";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not support sparse gradients"), std::string::npos);
  }
  at::Tensor z = torch::zeros({10}, torch::kComplexFloat).requires_grad_();
  z.mutable_grad() = torch::zeros({10}, torch::kComplexFloat);
  lowbit::optim::AdamW4bit optz({z});
  EXPECT_THROW(optz.step(), c10::Error);
  EXPECT_THROW(lowbit::optim::AdamW8bit({p}, lowbit::optim::AdamW8bitOptions().block_size(100)), c10::Error);
}

// Run by tests/python/test_optim.py::test_cross_face_state_round_trip with LOWBIT_CROSS_FACE_DIR
// set: loads the state the Python face saved, takes steps 3..5 with the gradients Python wrote,
// and writes the C++ face's state and parameters for Python to compare.
TEST(OptimCrossFace, ContinuesPythonRun) {
  const char* env = std::getenv("LOWBIT_CROSS_FACE_DIR");
  if (env == nullptr) GTEST_SKIP() << "driven by tests/python/test_optim.py";
  const std::string dir = env;
  const auto inputs = lowbit::io::load_safetensors(dir + "/inputs.safetensors");
  const std::string name = inputs.metadata.at("optimizer");
  const std::string fmt = name == "AdamW8bit" ? "8bit" : name == "AdamW4bit" ? "4bit" : "fp8";
  auto params = make_params();
  copy_params({inputs.tensors.at("param.0"), inputs.tensors.at("param.1"), inputs.tensors.at("param.2")}, params);
  auto opt = make_opt(fmt, params);
  ASSERT_EQ(opt->name(), name);
  lowbit::optim::load_state(*opt, dir + "/python_state.safetensors");
  for (int s = 3; s < 6; ++s) {
    for (size_t i = 0; i < params.size(); ++i)
      params[i].mutable_grad() = inputs.tensors.at("grad." + std::to_string(s) + "." + std::to_string(i));
    opt->step();
  }
  lowbit::optim::save_state(*opt, dir + "/cpp_state.safetensors");
  std::map<std::string, at::Tensor> out;
  for (size_t i = 0; i < params.size(); ++i) out["param." + std::to_string(i)] = params[i].detach();
  lowbit::io::save_safetensors(dir + "/cpp_params.safetensors", out);
}

}  // namespace
