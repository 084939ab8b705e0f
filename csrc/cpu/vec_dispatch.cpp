// Picks the vectorized CPU kernels (csrc/cpu/vec/kernels.h) for this machine. Compiled with the
// baseline flags: it only reads the CPU's capability and hands out a table.
#include <lowbit/cpu/vec/kernels.h>

#include <ATen/Version.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace lowbit::cpu::vec {

// Each ISA build (csrc/cpu/vec/registry.cpp) fills its table.
#define LOWBIT_DECLARE_FILL(isa) \
  namespace isa {                \
  void fill_kernels(Kernels* k); \
  }
#ifdef LOWBIT_CPU_HAVE_DEFAULT
LOWBIT_DECLARE_FILL(DEFAULT)
#endif
#ifdef LOWBIT_CPU_HAVE_AVX2
LOWBIT_DECLARE_FILL(AVX2)
#endif
#ifdef LOWBIT_CPU_HAVE_AVX512
LOWBIT_DECLARE_FILL(AVX512)
#endif
#undef LOWBIT_DECLARE_FILL

namespace {

// The widest set ATen itself runs on this machine (honours ATEN_CPU_CAPABILITY).
KernelSet aten_set() {
  const std::string cap = at::get_cpu_capability();
  if (cap == "AVX512") return KernelSet::Avx512;
  if (cap == "AVX2") return KernelSet::Avx2;
  return KernelSet::Default;
}

// Only the sets this CPU runs are filled: fill_kernels itself is compiled with its set's
// instructions (an AVX-512 build may use them even to store the pointers), so calling a wider
// set's would be an illegal instruction on a CPU without it.
struct Tables {
  Kernels by_set[4] = {};
  bool built[4] = {};
  Tables() {
    const int widest = static_cast<int>(aten_set());
#ifdef LOWBIT_CPU_HAVE_DEFAULT
    DEFAULT::fill_kernels(&by_set[1]);
    built[1] = true;
#endif
#ifdef LOWBIT_CPU_HAVE_AVX2
    if (widest >= static_cast<int>(KernelSet::Avx2)) {
      AVX2::fill_kernels(&by_set[2]);
      built[2] = true;
    }
#endif
#ifdef LOWBIT_CPU_HAVE_AVX512
    if (widest >= static_cast<int>(KernelSet::Avx512)) {
      AVX512::fill_kernels(&by_set[3]);
      built[3] = true;
    }
#endif
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

bool runnable(KernelSet s) {
  return s == KernelSet::Reference ||
         (tables().built[static_cast<int>(s)] && static_cast<int>(s) <= static_cast<int>(aten_set()));
}

KernelSet initial_set() {
  if (const char* env = std::getenv("LOWBIT_CPU_KERNELS")) {
    const std::string v(env);
    const KernelSet asked = v == "reference" ? KernelSet::Reference
                            : v == "default" ? KernelSet::Default
                            : v == "avx2"    ? KernelSet::Avx2
                            : v == "avx512"  ? KernelSet::Avx512
                                             : KernelSet::Reference;
    TORCH_CHECK(v == "reference" || v == "default" || v == "avx2" || v == "avx512", "LOWBIT_CPU_KERNELS='", v,
                "' is not a kernel set; allowed: reference, default, avx2, avx512");
    TORCH_CHECK(runnable(asked), "LOWBIT_CPU_KERNELS=", v, ": this build or CPU cannot run it (ATen runs ",
                at::get_cpu_capability(), ")");
    return asked;
  }
  KernelSet s = aten_set();
  while (!runnable(s)) s = static_cast<KernelSet>(static_cast<int>(s) - 1);
  return s;
}

std::atomic<int>& current() {
  static std::atomic<int> c{static_cast<int>(initial_set())};
  return c;
}

}  // namespace

const Kernels* kernels() {
  const int s = current().load(std::memory_order_relaxed);
  return s == 0 ? nullptr : &tables().by_set[s];
}

KernelSet kernel_set() { return static_cast<KernelSet>(current().load(std::memory_order_relaxed)); }

void set_kernel_set(KernelSet set) {
  TORCH_CHECK(runnable(set), "set_kernel_set: ", kernel_set_name(set), " kernels are not available here (ATen runs ",
              at::get_cpu_capability(), ")");
  current().store(static_cast<int>(set), std::memory_order_relaxed);
}

std::vector<KernelSet> available_kernel_sets() {
  std::vector<KernelSet> out;
  for (KernelSet s : {KernelSet::Reference, KernelSet::Default, KernelSet::Avx2, KernelSet::Avx512}) {
    if (runnable(s)) out.push_back(s);
  }
  return out;
}

const char* kernel_set_name(KernelSet set) {
  switch (set) {
    case KernelSet::Reference: return "reference";
    case KernelSet::Default: return "default";
    case KernelSet::Avx2: return "avx2";
    case KernelSet::Avx512: return "avx512";
  }
  return "?";
}

}  // namespace lowbit::cpu::vec
