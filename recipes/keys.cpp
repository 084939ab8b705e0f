// Every recipe config key: type, default, allowed values, help. See keys.h.
#include <lowbit/recipes/keys.h>

#include <lowbit/build_config.h>
#include <lowbit/core/semi_sparse_linear.h>
#include <lowbit/float8/config.h>
#include <lowbit/inference/config.h>
#include <lowbit/recipes/llama.h>
#include <lowbit/recipes/pretrain.h>

#include <c10/util/Exception.h>
#include <torch/cuda.h>

#include <filesystem>
#include <regex>

namespace lowbit::recipes {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::vector<std::string> float8_recipe_names() {
  std::vector<std::string> out;
  for (auto r : {core::Float8Recipe::Tensorwise, core::Float8Recipe::Rowwise, core::Float8Recipe::RowwiseWithGwHp}) {
    out.push_back(core::float8_recipe_name(r));
  }
  return out;
}

// The first line of a c10::Error's message (without the C++ source location).
std::string message_of(const c10::Error& e) {
  std::string m = e.msg();
  return m.substr(0, m.find('\n'));
}

}  // namespace

std::string device_problem(const std::string& device) {
  if (device == "cpu") return "";
  static const std::regex cuda_re("cuda(:([0-9]+))?");
  std::smatch m;
  if (!std::regex_match(device, m, cuda_re)) return "'" + device + "' is not a device name";
  if (!LOWBIT_WITH_CUDA) return "'" + device + "': this lowbit was built without CUDA kernels (LOWBIT_CUDA=OFF)";
  const int64_t count = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  const int64_t index = m[2].matched ? std::stoll(m[2].str()) : 0;
  if (index >= count) {
    return "'" + device + "': torch sees " + std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") +
           " on this machine";
  }
  return "";
}

const std::vector<std::string>& qat_scheme_names() {
  static const std::vector<std::string> names = {"int8dq_int4", "int4wo"};
  return names;
}

Schema model_keys() {
  Schema s;
  s.key("model.vocab_size", Type::Int, "256", "vocabulary size (tokens are bytes: ids 0..255)", at_least(256));
  s.key("model.dim", Type::Int, "128", "model width", greater_than(0));
  s.key("model.n_layers", Type::Int, "4", "transformer blocks", greater_than(0));
  s.key("model.n_heads", Type::Int, "4", "attention (query) heads; model.dim must be a multiple", greater_than(0));
  s.key("model.n_kv_heads", Type::Int, "2", "key/value heads (grouped-query attention); divides model.n_heads",
        greater_than(0));
  s.key("model.hidden_dim", Type::Int, "384", "SwiGLU inner width", greater_than(0));
  s.key("model.max_seq_len", Type::Int, "256", "longest sequence (rotary tables)", greater_than(0));
  s.key("model.norm_eps", Type::Float, "1.0e-5", "RMSNorm epsilon", greater_than(0));
  s.key("model.rope_theta", Type::Float, "10000.0", "rotary embedding base", greater_than(0));
  s.rule({"model.dim", "model.n_heads", "model.n_kv_heads"}, [](const Config& c) -> std::string {
    try {
      LlamaConfig::from_config(c);  // the shape rules live with the model, once
      return "";
    } catch (const c10::Error& e) {
      return message_of(e);
    } catch (const ConfigError&) {
      return "";  // a key of the wrong type, reported on its own
    }
  });
  return s;
}

Schema optim_keys() {
  Schema s;
  s.key("optim.name", Type::String, "adamw8bit",
        "optimizer: torch's AdamW, or lowbit's AdamW with 8-bit, 4-bit or float8 states", one_of(optimizer_names()));
  s.key("optim.lr", Type::Float, "3.0e-3", "peak learning rate (after warm-up; cosine decay follows)",
        greater_than(0));
  s.key("optim.betas", Type::list_of(Type::Float), "[0.9, 0.95]", "Adam's [beta1, beta2]",
        custom("two values in [0, 1)", [](const YAML::Node& n) -> std::string {
          const double v = n.as<double>();
          return v >= 0 && v < 1 ? "" : "'" + n.Scalar() + "' is outside [0, 1)";
        }));
  s.key("optim.eps", Type::Float, "1.0e-8", "Adam's epsilon", greater_than(0));
  s.key("optim.weight_decay", Type::Float, "0.1", "decoupled weight decay", at_least(0));
  s.rule({"optim.betas"}, [](const Config& c) -> std::string {
    const auto n = c.node("optim.betas").size();
    return n == 2 ? "" : "optim.betas needs exactly 2 values [beta1, beta2], got " + std::to_string(n);
  });
  return s;
}

Schema float8_keys() {
  Schema s;
  s.key("float8.enabled", Type::Bool, "true", "train the linears in float8 (convert_to_float8_training)");
  s.key("float8.recipe", Type::String, "tensorwise", "float8 scaling recipe", one_of(float8_recipe_names()));
  s.key("float8.emulate", Type::Bool, "true",
        "fp8 rounding with float32 GEMMs (CPUs, GPUs without fp8 tensor cores); false needs an sm_89+ GPU");
  s.rule({"float8.enabled", "float8.emulate", "train.device"}, [](const Config& c) -> std::string {
    if (!c.has("train.device") || !c.get_bool("float8.enabled") || c.get_bool("float8.emulate")) return "";
    if (c.get_string("train.device") != "cpu") return "";
    return "float8.emulate=false runs real fp8 GEMMs, which need a CUDA GPU (sm_89+); with train.device=cpu "
           "set float8.emulate=true (or float8.enabled=false)";
  });
  return s;
}

Schema sparse_keys() {
  Schema s;
  s.key("sparse.enabled", Type::Bool, "false",
        "train the feed-forward linears (w1, w2, w3) with 2:4 sparse weights, pruned every step from the dense "
        "master weights (lowbit::sparse::convert_to_semi_sparse_training)");
  s.key("sparse.dense_after_fraction", Type::Float, "1.0",
        "sparse-then-dense: train dense after this fraction of train.steps, from the weights sparse.dense_init names "
        "(1: sparse to the end)",
        custom("a fraction in (0, 1]", [](const YAML::Node& n) -> std::string {
          const double v = n.as<double>();
          return v > 0 && v <= 1 ? "" : "'" + n.Scalar() + "' is outside (0, 1]";
        }));
  s.key("sparse.dense_init", Type::String, "pruned",
        "the weights the dense phase of sparse.dense_after_fraction starts from: pruned (W*M, what the sparse forward "
        "used: the same function across the switch, the pruned entries regrow from zero) or master (the dense master "
        "weights as they are: the pruned entries act again at once)",
        one_of({"pruned", "master"}));
  s.key("sparse.gradient", Type::String, "masked",
        "what reaches the dense master weights: masked (the 2:4 pattern; the pruned entries get none) or ste "
        "(straight-through, unmasked). masked ends within seed noise of dense on benchmarks/sparse_quality.py, ste "
        "+0.03 nats behind (README)",
        one_of({"ste", "masked"}));
  s.rule({"sparse.enabled", "float8.enabled"}, [](const Config& c) -> std::string {
    if (!c.get_bool("sparse.enabled") || !c.has("float8.enabled") || !c.get_bool("float8.enabled")) return "";
    return "sparse.enabled=true and float8.enabled=true do not combine (a linear trains either in float8 or with a "
           "2:4 weight; there is no fp8 2:4 training GEMM); set float8.enabled=false";
  });
  s.rule({"sparse.enabled", "train.device"}, [](const Config& c) -> std::string {
    if (!c.get_bool("sparse.enabled") || !c.has("train.device") || c.get_string("train.device") == "cpu") return "";
    return "sparse.enabled=true on " + c.get_string("train.device") + ": the CUDA 2:4 GEMMs (cuSPARSELt) run in "
           "bfloat16 / float16 and the recipes train in float32; run the 2:4 recipe with train.device=cpu (the exact "
           "reference), or use lowbit.sparse directly in a bfloat16 training loop";
  });
  s.rule({"sparse.enabled", "distributed.enabled"}, [](const Config& c) -> std::string {
    if (!c.get_bool("sparse.enabled") || !c.has("distributed.enabled") || !c.get_bool("distributed.enabled")) return "";
    return "sparse.enabled=true and distributed.enabled=true do not combine yet (2:4 training of sharded weights is "
           "untested); train 2:4 on one process, or set sparse.enabled=false";
  });
  s.rule({"sparse.enabled", "model.dim", "model.hidden_dim"}, [](const Config& c) -> std::string {
    if (!c.get_bool("sparse.enabled") || !c.has("model.dim") || !c.has("model.hidden_dim")) return "";
    const int64_t dim = c.get_int("model.dim"), hidden = c.get_int("model.hidden_dim");
    // w1 / w3: (hidden, dim); w2: (dim, hidden). The shape rule of the 2:4 ops, once (lowbit::core).
    const auto reason = core::semi_sparse_unsupported_reason(hidden, dim, c10::DeviceType::CPU);
    return reason ? "sparse.enabled=true: the feed-forward linears (model.dim x model.hidden_dim) cannot be 2:4: " +
                        *reason
                  : "";
  });
  return s;
}

Schema data_keys() {
  Schema s;
  s.key("data.fortunes_dir", Type::String, "/usr/share/games/fortunes",
        "folder of Debian's fortunes files (apt-get install fortunes)",
        custom("an existing folder", [](const YAML::Node& n) -> std::string {
          return fs::is_directory(n.Scalar()) ? "" : "no folder '" + n.Scalar() + "'";
        }));
  s.key("data.val_every", Type::Int, "10", "fortune i is validation text when i % val_every == val_every - 1",
        at_least(2));
  s.key("data.seq_len", Type::Int, "128", "tokens per sequence", greater_than(0));
  s.key("data.batch_size", Type::Int, "8", "sequences per step", greater_than(0));
  s.rule({"data.seq_len", "model.max_seq_len"}, [](const Config& c) -> std::string {
    if (!c.has("model.max_seq_len")) return "";
    const int64_t seq = c.get_int("data.seq_len"), max = c.get_int("model.max_seq_len");
    return seq <= max ? "" : "data.seq_len (" + std::to_string(seq) + ") exceeds model.max_seq_len (" +
                                 std::to_string(max) + ")";
  });
  return s;
}

Schema train_keys() {
  Schema s;
  s.key("train.steps", Type::Int, "200", "optimizer steps", greater_than(0));
  s.key("train.seed", Type::Int, "1234", "seed of the initialization and of the batches", at_least(0));
  s.key("train.device", Type::String, "cpu", "where to train",
        custom("cpu, cuda, cuda:N (a device this machine has)", [](const YAML::Node& n) {
          return device_problem(n.Scalar());
        }));
  s.key("train.grad_clip", Type::Float, "1.0", "max global gradient norm; 0 disables clipping", at_least(0));
  s.key("train.warmup_steps", Type::Int, "20", "linear warm-up steps before the cosine decay", at_least(0));
  s.key("train.min_lr_ratio", Type::Float, "0.1", "the cosine decays to min_lr_ratio * optim.lr", in_range(0, 1));
  s.key("train.log_every", Type::Int, "10", "steps between progress lines / metrics records", greater_than(0));
  s.key("train.eval_every", Type::Int, "100", "steps between validation perplexities (0: only at the end)",
        at_least(0));
  s.key("train.eval_batches", Type::Int, "8", "validation batches per evaluation", greater_than(0));
  s.key("train.checkpoint_every", Type::Int, "100", "steps between checkpoints (0: only at the end)", at_least(0));
  s.key("train.output_dir", Type::String, "outputs/pretrain_tiny", "where config, metrics and checkpoints go",
        custom("a folder path", [](const YAML::Node& n) -> std::string {
          return n.Scalar().empty() ? "an empty path" : "";
        }));
  s.key("train.resume", Type::Bool, "false", "continue from output_dir/checkpoint when it exists");
  s.key("train.stop_at", Type::Int, "0", "stop after this step (an interruption on purpose; 0: run all steps)",
        at_least(0));
  s.key("train.compile", Type::Bool, "false", "torch.compile the model (Python recipes only)");
  return s;
}

Schema finetune_keys() {
  Schema s;
  s.key("finetune.checkpoint", Type::String, "outputs/pretrain_tiny/checkpoint",
        "folder with the model.safetensors of lowbit-train or pretrain_llama",
        custom("a folder holding model.safetensors", [](const YAML::Node& n) -> std::string {
          return fs::is_regular_file(fs::path(n.Scalar()) / "model.safetensors")
                     ? ""
                     : "no model.safetensors in '" + n.Scalar() + "' (run lowbit-train first)";
        }));
  s.key("finetune.mode", Type::String, "plain",
        "none: quantize the checkpoint as it is; plain: fine-tune, then quantize; qat: fine-tune fake-quantized "
        "(lowbit.qat), then convert and quantize",
        one_of({"none", "plain", "qat"}));
  s.key("finetune.qat_scheme", Type::String, "int8dq_int4", "the QAT scheme of finetune.mode=qat",
        one_of(qat_scheme_names()));
  return s;
}

Schema quantize_keys() {
  Schema s;
  s.key("quantize.configs", Type::list_of(Type::String),
        "[none, int8wo, int8dq, float8wo_e4m3, fp6_e3m2, int4wo-32, uint4wo, fp4_e2m1, uint3wo, uint2wo, sparse24, "
        "autoquant]",
        "one table row each: none (the float model), autoquant (fastest per layer), or a quantize_ shorthand",
        custom("none, autoquant or a quantize_ shorthand (lowbit.inference.quantize_shorthands())",
               [](const YAML::Node& n) -> std::string {
                 const std::string name = n.Scalar();
                 if (name == "none" || name == "autoquant") return "";
                 try {
                   inference::parse_quantize_config(name);
                   return "";
                 } catch (const c10::Error& e) {
                   return "'" + name + "' is not a quantize_ shorthand; valid: none, autoquant, " +
                          join(inference::quantize_shorthands());
                 }
               }));
  s.key("quantize.prompt", Type::String, "\"Q: What is the meaning of life?\\nA: \"",
        "prompt of the generation benchmark (tokens/s)");
  s.key("quantize.generate_tokens", Type::Int, "32", "tokens generated per row (decode speed)", greater_than(0));
  s.rule({"quantize.prompt", "quantize.generate_tokens", "model.max_seq_len"}, [](const Config& c) -> std::string {
    if (!c.has("model.max_seq_len")) return "";
    const int64_t need = static_cast<int64_t>(c.get_string("quantize.prompt").size()) + c.get_int("quantize.generate_tokens");
    const int64_t max = c.get_int("model.max_seq_len");
    return need <= max ? "" : "quantize.prompt (" + std::to_string(need - c.get_int("quantize.generate_tokens")) +
                                  " bytes) + quantize.generate_tokens must fit in model.max_seq_len (" +
                                  std::to_string(max) + ")";
  });
  return s;
}

Schema distributed_keys() {
  Schema s;
  s.key("distributed.enabled", Type::Bool, "false",
        "train on the ranks torchrun starts (torchrun --nproc_per_node=N ...): each transformer block and the "
        "rest of the model sharded over them (FSDP); rank r trains on batch step * N + r, rank 0 logs");
  s.key("distributed.backend", Type::String, "auto",
        "process group backend: auto (gloo for CPU tensors, nccl for CUDA tensors), gloo, nccl",
        one_of({"auto", "gloo", "nccl"}));
  s.key("distributed.shard", Type::Bool, "true",
        "shard parameters, gradients and optimizer states (FSDP); false: every rank keeps the whole model and "
        "gradients are all-reduced (data parallel)");
  s.key("distributed.reshard_after_forward", Type::Bool, "true",
        "free each block's gathered parameters after forward and gather them again for backward");
  s.key("distributed.float8_all_gather", Type::Bool, "false",
        "all-gather float8 weights as fp8 bytes plus one scale, scales precomputed after each step");
  s.key("distributed.timeout_s", Type::Int, "300", "seconds a rendezvous or a collective may take before it is "
        "an error", greater_than(0));
  s.rule({"distributed.float8_all_gather", "float8.enabled", "float8.recipe", "distributed.shard"},
         [](const Config& c) -> std::string {
           if (!c.get_bool("distributed.float8_all_gather")) return "";
           if (!c.has("float8.enabled") || !c.get_bool("float8.enabled")) {
             return "distributed.float8_all_gather=true needs float8.enabled=true";
           }
           if (c.get_string("float8.recipe") != "tensorwise") {
             return "distributed.float8_all_gather=true needs float8.recipe=tensorwise (a rowwise weight is scaled "
                    "per row for the forward GEMM but per column for grad_input, across every shard)";
           }
           if (!c.get_bool("distributed.shard")) {
             return "distributed.float8_all_gather=true needs distributed.shard=true (nothing is gathered otherwise)";
           }
           return "";
         });
  return s;
}

}  // namespace lowbit::recipes
