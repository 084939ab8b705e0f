// Vectorized CPU kernels of the affine ops over blocks that are contiguous runs (per-tensor,
// per-row, per-group of the last dim; reference: csrc/cpu/affine.cpp):
//   choose:    per run, at::vec min / max of the finite values and a NaN flag (exact in any
//              order), then core::affine_qparams_from_min_max;
//   quantize / dequantize: core::affine_quantize_value / affine_dequantize_value over float32
//              chunks, each chunk split at run boundaries;
//   fake quantize: choose, quantize and dequantize of a run in one pass over it, which is what
//              the three ops compute one after the other (float32 qparams; an "int" zero point
//              is integral, so its int32 round trip is exact).
// Many runs: parallel over runs. Few long runs (per-tensor, a few rows): parallel inside a run.
#include <lowbit/cpu/vec/vec_util.h>

#include <atomic>
#include <limits>
#include <vector>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

// Runs per parallel_for task when parallel over runs; 0 means parallel inside each run instead.
int64_t runs_per_task(const AffineRuns& r) {
  const int64_t threads = at::get_num_threads();
  if (r.num_runs < 4 * threads && r.run >= kGrain) return 0;
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(r.run, 1));
}

template <typename T>
MinMax run_minmax(const T* x, int64_t n, bool parallel) {
  auto serial = [&](int64_t b, int64_t e) {
    MinMax m;
    for_float_chunks(x + b, e - b, [&](const float* c, int64_t, int64_t len) { m.add(affine_minmax(c, len)); });
    return m;
  };
  if (!parallel) return serial(0, n);
  return at::parallel_reduce(
      0, n, kGrain, MinMax{},
      [&](int64_t b, int64_t e, MinMax m) {
        m.add(serial(b, e));
        return m;
      },
      [](MinMax p, const MinMax& q) {
        p.add(q);
        return p;
      });
}

struct QParams {
  float scale, zero_point;
};

QParams qparams_of(const MinMax& m, const AffineRuns& r, bool symmetric, float eps) {
  QParams q;
  core::affine_qparams_from_min_max(m.mn, m.max_for_qparams(), r.range, symmetric, r.domain, eps, &q.scale,
                                    &q.zero_point);
  return q;
}

inline void quantize_chunk(const float* x, int64_t n, float s, float zp, const AffineRuns& r, uint8_t* out) {
  const core::QuantRange range = r.range;
  if (r.domain == core::ZeroPointDomain::Int) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<uint8_t>(core::affine_quantize_value(x[i], s, zp, range, core::ZeroPointDomain::Int));
  } else {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<uint8_t>(core::affine_quantize_value(x[i], s, zp, range, core::ZeroPointDomain::Float));
  }
}

// dequantize(quantize(x)) of a float32 chunk, in float32.
inline void fake_quantize_chunk(const float* x, int64_t n, float s, float zp, const AffineRuns& r, float* out) {
  const core::QuantRange range = r.range;
  if (r.domain == core::ZeroPointDomain::Int) {
    constexpr auto d = core::ZeroPointDomain::Int;
    for (int64_t i = 0; i < n; ++i)
      out[i] = core::affine_dequantize_value(core::affine_quantize_value(x[i], s, zp, range, d), s, zp, range, d);
  } else {
    constexpr auto d = core::ZeroPointDomain::Float;
    for (int64_t i = 0; i < n; ++i)
      out[i] = core::affine_dequantize_value(core::affine_quantize_value(x[i], s, zp, range, d), s, zp, range, d);
  }
}

// f(run, begin, end) for the pieces of [b, e) that lie in one run each.
template <typename F>
inline void for_run_pieces(int64_t b, int64_t e, int64_t run, F&& f) {
  while (b < e) {
    const int64_t k = b / run;
    const int64_t piece_end = std::min(e, (k + 1) * run);
    f(k, b, piece_end);
    b = piece_end;
  }
}

template <typename T>
void choose(const T* x, const AffineRuns& r, bool symmetric, float eps, float* scale, float* zp) {
  const int64_t per_task = runs_per_task(r);
  auto one = [&](int64_t k, bool parallel) {
    const QParams q = qparams_of(run_minmax(x + k * r.run, r.run, parallel), r, symmetric, eps);
    scale[k] = q.scale;
    zp[k] = q.zero_point;
  };
  if (per_task == 0) {
    for (int64_t k = 0; k < r.num_runs; ++k) one(k, true);
  } else {
    at::parallel_for(0, r.num_runs, per_task, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) one(k, false);
    });
  }
}

template <typename T>
void quantize(const T* x, const AffineRuns& r, const float* scale, const float* zp, uint8_t* codes) {
  at::parallel_for(0, r.num_runs * r.run, kGrain, [&](int64_t b, int64_t e) {
    for_run_pieces(b, e, r.run, [&](int64_t k, int64_t pb, int64_t pe) {
      for_float_chunks(x + pb, pe - pb, [&](const float* c, int64_t off, int64_t len) {
        quantize_chunk(c, len, scale[k], zp[k], r, codes + pb + off);
      });
    });
  });
}

template <typename Out>
int64_t dequantize(const uint8_t* codes, const AffineRuns& r, const float* scale, const float* zp, Out* out) {
  const core::QuantRange range = r.range;
  std::atomic<int64_t> first_bad{std::numeric_limits<int64_t>::max()};
  at::parallel_for(0, r.num_runs * r.run, kGrain, [&](int64_t b, int64_t e) {
    alignas(64) float buf[kChunk];
    alignas(64) int32_t q[kChunk];
    for_run_pieces(b, e, r.run, [&](int64_t k, int64_t pb, int64_t pe) {
      const float s = scale[k], z = zp[k];
      for (int64_t off = pb; off < pe; off += kChunk) {
        const int64_t len = std::min(kChunk, pe - off);
        const uint8_t* c = codes + off;
        if (range.is_signed) {
          for (int64_t i = 0; i < len; ++i) q[i] = static_cast<int8_t>(c[i]);
        } else {
          for (int64_t i = 0; i < len; ++i) q[i] = c[i];
        }
        int32_t outside = 0;
        for (int64_t i = 0; i < len; ++i) outside |= (q[i] < range.qmin) | (q[i] > range.qmax);
        if (outside) {
          for (int64_t i = 0; i < len; ++i) {
            if (q[i] < range.qmin || q[i] > range.qmax) {
              int64_t cur = first_bad.load();
              while (off + i < cur && !first_bad.compare_exchange_weak(cur, off + i)) {
              }
              return;
            }
          }
        }
        if (r.domain == core::ZeroPointDomain::Int) {
          for (int64_t i = 0; i < len; ++i)
            buf[i] = core::affine_dequantize_value(q[i], s, z, range, core::ZeroPointDomain::Int);
        } else {
          for (int64_t i = 0; i < len; ++i)
            buf[i] = core::affine_dequantize_value(q[i], s, z, range, core::ZeroPointDomain::Float);
        }
        store_floats(buf, len, out + off);
      }
    });
  });
  return first_bad.load() == std::numeric_limits<int64_t>::max() ? -1 : first_bad.load();
}

template <typename T>
void fake_quantize(const T* x, const AffineRuns& r, bool symmetric, float eps, T* out) {
  auto apply = [&](int64_t pb, int64_t pe, const QParams& q) {
    alignas(64) float buf[kChunk];
    for_float_chunks(x + pb, pe - pb, [&](const float* c, int64_t off, int64_t len) {
      fake_quantize_chunk(c, len, q.scale, q.zero_point, r, buf);
      store_floats(buf, len, out + pb + off);
    });
  };
  const int64_t per_task = runs_per_task(r);
  if (per_task == 0) {
    for (int64_t k = 0; k < r.num_runs; ++k) {
      const T* xr = x + k * r.run;
      const QParams q = qparams_of(run_minmax(xr, r.run, true), r, symmetric, eps);
      at::parallel_for(k * r.run, (k + 1) * r.run, kGrain, [&](int64_t b, int64_t e) { apply(b, e, q); });
    }
    return;
  }
  at::parallel_for(0, r.num_runs, per_task, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const QParams q = qparams_of(run_minmax(x + k * r.run, r.run, false), r, symmetric, eps);
      apply(k * r.run, (k + 1) * r.run, q);
    }
  });
}

}  // namespace

void affine_choose_qparams(const void* x, at::ScalarType dtype, const AffineRuns& r, bool symmetric, float eps,
                           float* scale, float* zero_point) {
  visit_float_dtype(dtype, [&](auto tag) {
    choose(static_cast<const decltype(tag)*>(x), r, symmetric, eps, scale, zero_point);
  });
}

void affine_quantize(const void* x, at::ScalarType dtype, const AffineRuns& r, const float* scale,
                     const float* zero_point, uint8_t* codes) {
  visit_float_dtype(dtype, [&](auto tag) { quantize(static_cast<const decltype(tag)*>(x), r, scale, zero_point, codes); });
}

int64_t affine_dequantize(const uint8_t* codes, const AffineRuns& r, const float* scale, const float* zero_point,
                          void* out, at::ScalarType out_dtype) {
  int64_t bad = -1;
  visit_float_dtype(out_dtype, [&](auto tag) {
    bad = dequantize(codes, r, scale, zero_point, static_cast<decltype(tag)*>(out));
  });
  return bad;
}

void fake_quantize_affine(const void* x, at::ScalarType dtype, const AffineRuns& r, bool symmetric, float eps,
                          void* out) {
  visit_float_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    fake_quantize(static_cast<const T*>(x), r, symmetric, eps, static_cast<T*>(out));
  });
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
