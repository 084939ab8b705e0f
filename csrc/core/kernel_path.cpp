// Counters behind lowbit::core::kernel_path_counts and last_kernel_path.
#include <lowbit/core/kernel_path.h>

#include <c10/util/Exception.h>

#include <array>
#include <atomic>

namespace lowbit::core {
namespace {

constexpr int kPaths = static_cast<int>(KernelPath::Count);

constexpr std::array<const char*, 4> kOps = {"scaled_mm", "weight_only_linear", "int8_dynamic_linear",
                                             "semi_sparse_mm"};

struct PathInfo {
  int op;  // index into kOps
  const char* name;
};

// Indexed by KernelPath; the static_assert below keeps it in step with the enum.
constexpr std::array<PathInfo, kPaths> kInfo = {{
    {0, "empty"},
    {0, "emulated"},
    {0, "cublaslt_tensorwise"},
    {0, "cublaslt_outer_vector"},
    {0, "unit_scale_fallback"},
    {1, "empty"},
    {1, "gemv"},
    {1, "wmma"},
    {1, "dequantize_cublas"},
    {2, "empty"},
    {2, "dp4a"},
    {2, "int_mm"},
    {3, "reference"},
    {3, "empty"},
    {3, "cusparselt"},
    {3, "cusparselt_padded"},
}};
static_assert(kInfo.size() == kPaths, "one PathInfo per KernelPath");

int op_index(const char* op) {
  for (size_t i = 0; i < kOps.size(); ++i)
    if (std::string(op) == kOps[i]) return static_cast<int>(i);
  return -1;
}

std::array<std::atomic<int64_t>, kPaths> g_counts{};
// Per op family: the last path + 1 (0: none yet).
std::array<std::atomic<int>, kOps.size()> g_last{};

}  // namespace

const char* kernel_path_op(KernelPath p) { return kOps[kInfo.at(static_cast<size_t>(p)).op]; }
const char* kernel_path_name(KernelPath p) { return kInfo.at(static_cast<size_t>(p)).name; }

void record_kernel_path(KernelPath p) noexcept {
  const int i = static_cast<int>(p);
  if (i < 0 || i >= kPaths) return;
  g_counts[i].fetch_add(1, std::memory_order_relaxed);
  g_last[kInfo[i].op].store(i + 1, std::memory_order_relaxed);
}

std::string last_kernel_path(const std::string& op) {
  const int o = op_index(op.c_str());
  TORCH_CHECK(o >= 0, "last_kernel_path: unknown op '", op, "'; allowed: scaled_mm, weight_only_linear, "
              "int8_dynamic_linear, semi_sparse_mm");
  const int last = g_last[o].load(std::memory_order_relaxed);
  return last == 0 ? "none" : kInfo[last - 1].name;
}

std::map<std::string, int64_t> kernel_path_counts() {
  std::map<std::string, int64_t> out;
  for (int i = 0; i < kPaths; ++i)
    out[std::string(kOps[kInfo[i].op]) + "/" + kInfo[i].name] = g_counts[i].load(std::memory_order_relaxed);
  return out;
}

void reset_kernel_path_counts() {
  for (auto& c : g_counts) c.store(0, std::memory_order_relaxed);
  for (auto& l : g_last) l.store(0, std::memory_order_relaxed);
}

std::string scaled_mm_last_path() { return last_kernel_path("scaled_mm"); }

}  // namespace lowbit::core
