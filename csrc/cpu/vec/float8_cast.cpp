// Vectorized CPU kernel of lowbit::cast_to_float8 (reference: csrc/cpu/float8_cast.cpp), and of
// its tensorwise steps as ops of their own, lowbit::float8_amax and cast_to_float8_with_scale
// (reference: csrc/cpu/float8_scale.cpp). One read for the amax and one for the cast, each parallel:
//   tensor: amax by parallel_reduce over chunks (max is exact in any order), then the cast;
//   row:    per row, amax then the cast while the row is in cache;
//   column: per batch entry, partial column amaxes over row chunks, combined, then the cast.
// Per element the same core/float8_format.h functions as the reference.
#include <lowbit/cpu/vec/vec_util.h>

#include <vector>

namespace lowbit::cpu::vec::CPU_CAPABILITY {
namespace {

template <bool kE5M2>
inline uint8_t encode(float x, float scale, float max_finite) {
  const float v = core::float8_scaled_value(x, scale, max_finite);
  return kE5M2 ? core::float8_e5m2_bits(v) : core::float8_e4m3fn_bits(v);
}

template <bool kE5M2>
void encode_with_scale(const float* x, int64_t n, float scale, float max_finite, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = encode<kE5M2>(x[i], scale, max_finite);
}

template <bool kE5M2>
void encode_with_scales(const float* x, int64_t n, const float* scale, float max_finite, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = encode<kE5M2>(x[i], scale[i], max_finite);
}

template <typename T>
float chunked_amax(const T* x, int64_t n) {
  float m = 0.0f;
  for_float_chunks(x, n, [&](const float* c, int64_t, int64_t len) { m = std::max(m, finite_amax(c, len)); });
  return m;
}

// The tensorwise steps: amax over all n elements, then the cast with one scale.
template <typename T>
float tensor_amax(const T* x, int64_t n) {
  return at::parallel_reduce(
      0, n, kGrain, 0.0f, [&](int64_t b, int64_t e, float m) { return std::max(m, chunked_amax(x + b, e - b)); },
      [](float p, float q) { return std::max(p, q); });
}

template <typename T, bool kE5M2>
void tensor_cast(const T* x, int64_t n, float s, uint8_t* out) {
  const float max_finite = kE5M2 ? core::kE5M2Max : core::kE4M3Max;
  at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for_float_chunks(x + b, e - b, [&](const float* c, int64_t off, int64_t len) {
      encode_with_scale<kE5M2>(c, len, s, max_finite, out + b + off);
    });
  });
}

template <typename T, bool kE5M2>
void cast(const Float8CastArgs& a) {
  const T* x = static_cast<const T*>(a.x);
  const float max_finite = kE5M2 ? core::kE5M2Max : core::kE4M3Max;
  const int64_t cols = a.cols, num_rows = a.batch * a.rows;
  auto scale_of = [&](float amax) { return core::float8_scale_from_amax(amax, max_finite, a.power_of_2); };

  if (a.granularity == Float8Granularity::Tensor) {
    const float s = scale_of(tensor_amax(x, cols));
    a.scale[0] = s;
    tensor_cast<T, kE5M2>(x, cols, s, a.out);
    return;
  }

  if (a.granularity == Float8Granularity::Row) {
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1));
    at::parallel_for(0, num_rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = x + r * cols;
        const float s = scale_of(chunked_amax(xr, cols));
        a.scale[r] = s;
        for_float_chunks(xr, cols, [&](const float* c, int64_t off, int64_t len) {
          encode_with_scale<kE5M2>(c, len, s, max_finite, a.out + r * cols + off);
        });
      }
    });
    return;
  }

  // Column: scale[b * cols + c] from the amax of column c of batch entry b.
  const int64_t rows = a.rows;
  // Enough row chunks to keep every thread busy (a few per thread), few enough that the partial
  // amaxes (chunks x cols floats per batch entry) stay small.
  const int64_t wanted = std::max<int64_t>(1, (4 * at::get_num_threads() + a.batch - 1) / std::max<int64_t>(a.batch, 1));
  const int64_t chunk_rows = std::max<int64_t>(1, (rows + wanted - 1) / wanted);
  const int64_t chunks = rows == 0 ? 0 : (rows + chunk_rows - 1) / chunk_rows;
  std::vector<float> partial(static_cast<size_t>(a.batch * chunks * cols), 0.0f);
  at::parallel_for(0, a.batch * chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t batch = t / chunks, chunk = t % chunks;
      float* acc = partial.data() + t * cols;
      const int64_t r_end = std::min(rows, (chunk + 1) * chunk_rows);
      for (int64_t r = chunk * chunk_rows; r < r_end; ++r) {
        for_float_chunks(x + (batch * rows + r) * cols, cols, [&](const float* c, int64_t off, int64_t len) {
          float* accc = acc + off;
          for (int64_t i = 0; i < len; ++i) {
            const float v = core::float8_amax_term(c[i]);
            accc[i] = v > accc[i] ? v : accc[i];
          }
        });
      }
    }
  });
  for (int64_t batch = 0; batch < a.batch; ++batch) {
    float* s = a.scale + batch * cols;
    for (int64_t c = 0; c < cols; ++c) {
      float m = 0.0f;
      for (int64_t k = 0; k < chunks; ++k) m = std::max(m, partial[(batch * chunks + k) * cols + c]);
      s[c] = scale_of(m);
    }
  }
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1));
  at::parallel_for(0, num_rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* s = a.scale + (r / rows) * cols;
      for_float_chunks(x + r * cols, cols, [&](const float* c, int64_t off, int64_t len) {
        encode_with_scales<kE5M2>(c, len, s + off, max_finite, a.out + r * cols + off);
      });
    }
  });
}

}  // namespace

float float8_amax(const void* x, at::ScalarType dtype, int64_t n) {
  float amax = 0.0f;
  visit_float_dtype(dtype, [&](auto tag) { amax = tensor_amax(static_cast<const decltype(tag)*>(x), n); });
  return amax;
}

void cast_to_float8_with_scale(const void* x, at::ScalarType dtype, int64_t n, float scale, bool e5m2, uint8_t* out) {
  visit_float_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (e5m2) {
      tensor_cast<T, true>(static_cast<const T*>(x), n, scale, out);
    } else {
      tensor_cast<T, false>(static_cast<const T*>(x), n, scale, out);
    }
  });
}

void cast_to_float8(const Float8CastArgs& a) {
  visit_float_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (a.e5m2) {
      cast<T, true>(a);
    } else {
      cast<T, false>(a);
    }
  });
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
