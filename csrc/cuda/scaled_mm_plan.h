// The host-side rules of scaled_mm's cuBLASLt path, in plain C++ (no CUDA headers), so the CPU
// build compiles them and GoogleTest checks them (tests/cpp/test_scaled_mm_plan.cpp):
//   - geometry: which dims are padded to 16 (cuBLASLt's fp8 rule) and when the output is copied;
//   - pointer alignment: what the heuristic is told (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*) and
//     which operands are copied first (fp8 GEMMs need 16-byte aligned buffers);
//   - the bias rule: in cuBLASLt's epilogue for 16-bit outputs, after the GEMM for float32;
//   - the plan key (everything the chosen algorithm depends on) and a bounded LRU plan cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace lowbit::cuda {

// cuBLASLt assumes 256-byte aligned buffers unless told otherwise (the PREF_MIN_ALIGNMENT default).
constexpr uint32_t kMaxAlignment = 256;
// fp8 GEMMs need every matrix 16-byte aligned; operands below that are copied.
constexpr uint32_t kOperandAlignment = 16;
// Plans kept per thread. A plan is a descriptor, four layouts and an algorithm: a few KB. Training
// with variable sequence lengths makes a new M per batch; the bound keeps that from growing
// without end (a miss costs one heuristic query, tens of microseconds).
constexpr size_t kPlanCacheCapacity = 256;

inline int64_t round_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// The largest power of two <= kMaxAlignment that divides the address (a null pointer: kMaxAlignment).
inline uint32_t pointer_alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t align = kMaxAlignment;
  while (align > 1 && address % align != 0) align /= 2;
  return align;
}

// True when a buffer at p must be copied before cuBLASLt may read it.
inline bool needs_alignment_copy(const void* p) { return pointer_alignment(p) < kOperandAlignment; }

// How an (M, K) x (K, N) problem is laid out for cuBLASLt: K and N padded to multiples of 16 with
// zeros (fp8 GEMMs need K- and N-extents of 16; M is free). The padded output columns are sliced
// away, which costs one copy of the (M, N) output when N % 16 != 0.
struct ScaledMmGeometry {
  int64_t m, n, k;
  int64_t n_pad, k_pad;
  bool output_copy;  // N % 16 != 0: the result is copied out of an (M, n_pad) buffer
};

inline ScaledMmGeometry scaled_mm_geometry(int64_t m, int64_t n, int64_t k) {
  const int64_t n_pad = round_up(n, 16), k_pad = round_up(k, 16);
  return {m, n, k, n_pad, k_pad, n_pad != n};
}

// Where the bias is added. cuBLASLt's fp8 bias epilogue takes a bias of the output type for 16-bit
// outputs but a bf16 bias for float32 outputs, which would round a float32 bias; so float32 outputs
// add the float32 bias after the GEMM, as the reference does.
enum class BiasEpilogue { None, Fused, AfterGemm };

inline BiasEpilogue bias_epilogue(bool has_bias, bool float32_output) {
  if (!has_bias) return BiasEpilogue::None;
  return float32_output ? BiasEpilogue::AfterGemm : BiasEpilogue::Fused;
}

enum class ScaleMode : int { Tensorwise, OuterVector };

// Everything the descriptors and the heuristic's algorithm depend on. Types are cudaDataType_t
// values (ints here); alignments are pointer_alignment() of each buffer, because an algorithm
// chosen for 256-byte aligned buffers may not run on 16-byte aligned ones.
struct PlanKey {
  int device = 0;
  int64_t rows = 0, cols = 0, depth = 0;  // cuBLASLt's m, n, k: our n_pad, M, k_pad
  int a_type = 0, b_type = 0, out_type = 0;
  int bias_type = -1;  // -1: no bias epilogue
  ScaleMode scale_mode = ScaleMode::Tensorwise;
  bool fast_accum = false;
  uint32_t align_a = kMaxAlignment, align_b = kMaxAlignment, align_out = kMaxAlignment;
  uint32_t align_scale_a = kMaxAlignment, align_scale_b = kMaxAlignment, align_bias = kMaxAlignment;

  auto tie() const {
    return std::tie(device, rows, cols, depth, a_type, b_type, out_type, bias_type, scale_mode, fast_accum, align_a,
                    align_b, align_out, align_scale_a, align_scale_b, align_bias);
  }
  bool operator==(const PlanKey& o) const { return tie() == o.tie(); }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    size_t h = 0;
    auto mix = [&h](int64_t v) { h = (h ^ std::hash<int64_t>()(v)) * 1099511628211ull; };
    for (int64_t v : {int64_t(k.device), k.rows, k.cols, k.depth, int64_t(k.a_type), int64_t(k.b_type),
                      int64_t(k.out_type), int64_t(k.bias_type), int64_t(k.scale_mode), int64_t(k.fast_accum),
                      int64_t(k.align_a), int64_t(k.align_b), int64_t(k.align_out), int64_t(k.align_scale_a),
                      int64_t(k.align_scale_b), int64_t(k.align_bias)})
      mix(v);
    return h;
  }
};

// A least-recently-used map of at most `capacity` values, owned (destroyed on eviction).
// Not thread-safe: scaled_mm keeps one per thread.
template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The value for key, made by make() (returning std::unique_ptr<Value>) on a miss; a miss on a
  // full cache first destroys the least recently used value. The reference stays valid until the
  // next call that misses.
  template <typename Make>
  Value& get_or_create(const Key& key, Make&& make) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);  // now the most recent
      ++hits_;
      return *it->second->second;
    }
    std::unique_ptr<Value> value = make();  // may throw: the cache is unchanged then
    if (index_.size() >= capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
      ++evictions_;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    ++misses_;
    return *order_.front().second;
  }

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  int64_t evictions() const { return evictions_; }
  bool contains(const Key& key) const { return index_.count(key) != 0; }

 private:
  using Entry = std::pair<Key, std::unique_ptr<Value>>;
  size_t capacity_;
  std::list<Entry> order_;  // front: most recently used
  std::unordered_map<Key, typename std::list<Entry>::iterator, Hash> index_;
  int64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace lowbit::cuda
