// Absorbed MLA decode attention read straight from the paged latent cache (CPU, float32).
//
// The reference path gathers each row's context out of the paged storage into a [B, S, r + rope]
// copy and scores it with batched matmuls of M = T * heads query rows; on one core with M = 3 that
// was memory traffic three times over (gather write, two bmm reads) and small-M GEMMs. Here each
// batch row reads its cached latent rows in place, once per pass (scores, then the probability-
// weighted sum of their first r values), and only up to its own length, not the bucket's.
//
// paged_latent_attention(q [B, M, D], new [B, T, D], storage [slots, D], slots [B, S], starts [B],
//                        scale, r, heads) -> [B, M, r]
// Query j is token j / heads of its row; it sees the row's min(starts[b], S) cached positions
// (slots[b, :]) and the new tokens 0 .. j / heads (causal), as kv_cache.BatchView's mask says.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

typedef float vf __attribute__((vector_size(32)));  // 8 lanes: AVX on x86, two NEON registers on ARM
constexpr int64_t L = 8;

inline vf load(const float* p) { vf x; std::memcpy(&x, p, sizeof x); return x; }
inline void store(float* p, vf x) { std::memcpy(p, &x, sizeof x); }
inline float hsum(vf x) {
  float s = 0.f;
  for (int64_t u = 0; u < L; ++u) s += x[u];
  return s;
}

// q [d] . k [d] with four independent accumulators (one would be bound by the FMA latency)
inline float dot(const float* q, const float* k, int64_t d) {
  vf a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 4 * L <= d; i += 4 * L) {
    a0 += load(q + i) * load(k + i);
    a1 += load(q + i + L) * load(k + i + L);
    a2 += load(q + i + 2 * L) * load(k + i + 2 * L);
    a3 += load(q + i + 3 * L) * load(k + i + 3 * L);
  }
  float acc = hsum((a0 + a1) + (a2 + a3));
  for (; i < d; ++i) acc += q[i] * k[i];
  return acc;
}

// out [m, r] = p [m, n_keys] @ rows[:n_keys][:r]: two queries by 32 columns at a time held in
// registers while the keys stream past (each key chunk loaded once for both queries)
void weighted_sum(float* out, int64_t r, const float* p, int64_t n_keys, int64_t m, const float* const* rows) {
  int64_t j = 0;
  for (; j + 2 <= m; j += 2) {
    const float* p0 = p + j * n_keys;
    const float* p1 = p0 + n_keys;
    int64_t c = 0;
    for (; c + 4 * L <= r; c += 4 * L) {
      vf x0 = {}, x1 = {}, x2 = {}, x3 = {}, y0 = {}, y1 = {}, y2 = {}, y3 = {};
      for (int64_t s = 0; s < n_keys; ++s) {
        const float* row = rows[s] + c;
        vf v0 = load(row), v1 = load(row + L), v2 = load(row + 2 * L), v3 = load(row + 3 * L);
        float a = p0[s], b = p1[s];
        x0 += a * v0; x1 += a * v1; x2 += a * v2; x3 += a * v3;
        y0 += b * v0; y1 += b * v1; y2 += b * v2; y3 += b * v3;
      }
      float* o0 = out + j * r + c;
      float* o1 = o0 + r;
      store(o0, x0); store(o0 + L, x1); store(o0 + 2 * L, x2); store(o0 + 3 * L, x3);
      store(o1, y0); store(o1 + L, y1); store(o1 + 2 * L, y2); store(o1 + 3 * L, y3);
    }
    for (; c < r; ++c) {
      float x = 0.f, y = 0.f;
      for (int64_t s = 0; s < n_keys; ++s) {
        x += p0[s] * rows[s][c];
        y += p1[s] * rows[s][c];
      }
      out[j * r + c] = x;
      out[(j + 1) * r + c] = y;
    }
  }
  for (; j < m; ++j) {  // an odd last query
    const float* p0 = p + j * n_keys;
    int64_t c = 0;
    for (; c + 4 * L <= r; c += 4 * L) {
      vf x0 = {}, x1 = {}, x2 = {}, x3 = {};
      for (int64_t s = 0; s < n_keys; ++s) {
        const float* row = rows[s] + c;
        float a = p0[s];
        x0 += a * load(row); x1 += a * load(row + L); x2 += a * load(row + 2 * L); x3 += a * load(row + 3 * L);
      }
      float* o0 = out + j * r + c;
      store(o0, x0); store(o0 + L, x1); store(o0 + 2 * L, x2); store(o0 + 3 * L, x3);
    }
    for (; c < r; ++c) {
      float x = 0.f;
      for (int64_t s = 0; s < n_keys; ++s) x += p0[s] * rows[s][c];
      out[j * r + c] = x;
    }
  }
}

// One batch row: keys are rows[:n_past] (cached) then rows[n_past:] (the t new tokens).
void attend_row(const float* q, int64_t m, int64_t d, int64_t heads, const std::vector<const float*>& rows,
                int64_t n_past, float scale, int64_t r, float* out, std::vector<float>& p) {
  const int64_t n_keys = static_cast<int64_t>(rows.size());
  p.resize(m * n_keys);
  for (int64_t j = 0; j < m; ++j) {
    float* pj = p.data() + j * n_keys;
    const int64_t visible = std::min(n_past + j / heads + 1, n_keys);
    float mx = -INFINITY;
    for (int64_t s = 0; s < visible; ++s) {
      pj[s] = dot(q + j * d, rows[s], d) * scale;
      mx = std::max(mx, pj[s]);
    }
    float sum = 0.f;
    for (int64_t s = 0; s < visible; ++s) {
      pj[s] = std::exp(pj[s] - mx);
      sum += pj[s];
    }
    for (int64_t s = 0; s < visible; ++s) pj[s] /= sum;
    std::fill(pj + visible, pj + n_keys, 0.f);
  }
  weighted_sum(out, r, p.data(), n_keys, m, rows.data());
}

at::Tensor paged_latent_attention(const at::Tensor& q, const at::Tensor& fresh, const at::Tensor& storage,
                                  const at::Tensor& slots, const at::Tensor& starts, double scale, int64_t r,
                                  int64_t heads) {
  TORCH_CHECK(q.dim() == 3 && fresh.dim() == 3 && storage.dim() == 2 && slots.dim() == 2 && starts.dim() == 1,
              "paged_latent_attention: q [B, M, D], new [B, T, D], storage [N, D], slots [B, S], starts [B]");
  TORCH_CHECK(q.scalar_type() == at::kFloat && fresh.scalar_type() == at::kFloat && storage.scalar_type() == at::kFloat,
              "paged_latent_attention: float32 only");
  TORCH_CHECK(slots.scalar_type() == at::kLong && starts.scalar_type() == at::kLong, "slots and starts must be int64");
  const int64_t b_n = q.size(0), m = q.size(1), d = q.size(2), t = fresh.size(1), s_max = slots.size(1);
  TORCH_CHECK(fresh.size(0) == b_n && fresh.size(2) == d && storage.size(1) == d && slots.size(0) == b_n &&
              starts.size(0) == b_n && m == t * heads && 0 < r && r <= d, "paged_latent_attention: shapes disagree");
  TORCH_CHECK(storage.stride(1) == 1, "paged_latent_attention: storage rows must be contiguous");
  const at::Tensor qc = q.contiguous(), fc = fresh.contiguous(), sc = slots.contiguous(), stc = starts.contiguous();
  at::Tensor out = at::empty({b_n, m, r}, q.options());
  const float* qp = qc.data_ptr<float>();
  const float* np = fc.data_ptr<float>();
  const float* sp = storage.data_ptr<float>();
  const int64_t* slot = sc.data_ptr<int64_t>();
  const int64_t* start = stc.data_ptr<int64_t>();
  const int64_t n_slots = storage.size(0), row_stride = storage.stride(0);
  float* op = out.data_ptr<float>();
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t s = 0; s < std::min(std::max<int64_t>(start[b], 0), s_max); ++s)
      TORCH_CHECK(0 <= slot[b * s_max + s] && slot[b * s_max + s] < n_slots, "paged_latent_attention: slot out of range");
  at::parallel_for(0, b_n, 1, [&](int64_t lo, int64_t hi) {
    std::vector<const float*> rows;
    std::vector<float> p;
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t n_past = std::min(std::max<int64_t>(start[b], 0), s_max);
      rows.clear();
      for (int64_t s = 0; s < n_past; ++s) rows.push_back(sp + slot[b * s_max + s] * row_stride);
      for (int64_t i = 0; i < t; ++i) rows.push_back(np + (b * t + i) * d);
      attend_row(qp + b * m * d, m, d, heads, rows, n_past, static_cast<float>(scale), r, op + b * m * r, p);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(deepseek_mla, m) {
  m.def("paged_latent_attention(Tensor q, Tensor new, Tensor storage, Tensor slots, Tensor starts, float scale, "
        "int r, int heads) -> Tensor");
}

TORCH_LIBRARY_IMPL(deepseek_mla, CPU, m) { m.impl("paged_latent_attention", &paged_latent_attention); }
