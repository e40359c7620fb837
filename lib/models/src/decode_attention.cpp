#include "decode_attention.h"

#include "accel/core/error.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace accel::models::detail {
namespace {

// Independent partial sums, so the compiler vectorises a dot product without reordering any
// one sum (float addition is not associative).
constexpr int kLanes = 8;

template <class Scalar>
float dot(const Scalar* a, const Scalar* b, std::int64_t n) {
  float lanes[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += static_cast<float>(a[i + l]) * static_cast<float>(b[i + l]);
  float sum = 0;
  for (; i < n; ++i) sum += static_cast<float>(a[i]) * static_cast<float>(b[i]);
  for (const float lane : lanes) sum += lane;
  return sum;
}

// Where each tensor's (row, head) starts, in elements; every row of D values is contiguous.
struct Layout {
  std::int64_t heads, groups, keys, dim;
  std::int64_t q_batch, q_head, kv_batch, kv_head, kv_key, v_batch, v_head, v_key, blocked_batch, blocked_key;
};

// One (row, head): softmax(scale * q.k) over the keys the row may see, times v. `scores` and
// `sum` are the calling thread's scratch.
template <class Scalar>
void attend_head(const Layout& l, std::int64_t batch, std::int64_t head, const Scalar* q, const Scalar* k,
                 const Scalar* v, const bool* blocked, float scale, Scalar* out, std::vector<float>& scores,
                 std::vector<float>& sum) {
  const auto kv_head = head / l.groups;
  const Scalar* query = q + batch * l.q_batch + head * l.q_head;
  const Scalar* keys = k + batch * l.kv_batch + kv_head * l.kv_head;
  const Scalar* values = v + batch * l.v_batch + kv_head * l.v_head;
  const bool* hidden = blocked + batch * l.blocked_batch;
  float highest = std::numeric_limits<float>::lowest();
  for (std::int64_t t = 0; t < l.keys; ++t) {
    scores[t] = hidden[t * l.blocked_key] ? std::numeric_limits<float>::lowest()
                                          : scale * dot(query, keys + t * l.kv_key, l.dim);
    highest = std::max(highest, scores[t]);
  }
  float total = 0;
  for (std::int64_t t = 0; t < l.keys; ++t) {
    scores[t] = std::exp(scores[t] - highest);
    total += scores[t];
  }
  std::fill(sum.begin(), sum.end(), 0.0f);
  for (std::int64_t t = 0; t < l.keys; ++t) {
    const float weight = scores[t] / total;
    const Scalar* value = values + t * l.v_key;
    for (std::int64_t d = 0; d < l.dim; ++d) sum[d] += weight * static_cast<float>(value[d]);
  }
  Scalar* result = out + (batch * l.heads + head) * l.dim;
  std::copy(sum.begin(), sum.end(), result);
}

template <class Scalar>
void attend_all(const Layout& l, std::int64_t batches, const torch::Tensor& q, const torch::Tensor& k,
                const torch::Tensor& v, const torch::Tensor& blocked, float scale, torch::Tensor& out) {
  const auto* qs = q.data_ptr<Scalar>();
  const auto* ks = k.data_ptr<Scalar>();
  const auto* vs = v.data_ptr<Scalar>();
  const auto* hidden = blocked.data_ptr<bool>();
  auto* result = out.data_ptr<Scalar>();
  // Shares of at least ~64K multiply-adds, so a thread's start is worth it.
  const auto grain = std::max<std::int64_t>(1, (std::int64_t{1} << 16) / std::max<std::int64_t>(1, 2 * l.keys * l.dim));
  at::parallel_for(0, batches * l.heads, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scores(static_cast<std::size_t>(l.keys)), sum(static_cast<std::size_t>(l.dim));
    for (auto pair = begin; pair < end; ++pair)
      attend_head(l, pair / l.heads, pair % l.heads, qs, ks, vs, hidden, scale, result, scores, sum);
  });
}

}  // namespace

bool one_query_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& blocked) {
  const auto dtype = q.scalar_type();
  if ((dtype != torch::kFloat32 && dtype != torch::kBFloat16) || k.scalar_type() != dtype ||
      v.scalar_type() != dtype || blocked.scalar_type() != torch::kBool)
    return false;
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || blocked.dim() != 4 || !q.device().is_cpu() ||
      !k.device().is_cpu() || !v.device().is_cpu() || !blocked.device().is_cpu())
    return false;
  const auto batch = q.size(0), heads = q.size(1), dim = q.size(3), kv_heads = k.size(1), keys = k.size(2);
  return q.size(2) == 1 && k.size(0) == batch && kv_heads > 0 && heads % kv_heads == 0 && k.size(3) == dim &&
         v.sizes() == k.sizes() && blocked.size(0) == batch && blocked.size(1) == 1 && blocked.size(2) == 1 &&
         blocked.size(3) == keys && q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1;
}

torch::Tensor attend_one_query(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& blocked, double scale) {
  if (!one_query_attention_applies(q, k, v, blocked))
    throw UsageError("one-query attention takes q [B,H,1,D], k and v [B,H/G,K,D] and blocked [B,1,1,K] on the "
                     "CPU, float32 or bfloat16 alike, rows of D contiguous; got q " + c10::str(q.sizes()) +
                     ", k " + c10::str(k.sizes()) + ", v " + c10::str(v.sizes()) + ", blocked " +
                     c10::str(blocked.sizes()));
  const Layout layout{.heads = q.size(1), .groups = q.size(1) / k.size(1), .keys = k.size(2), .dim = q.size(3),
                      .q_batch = q.stride(0), .q_head = q.stride(1), .kv_batch = k.stride(0),
                      .kv_head = k.stride(1), .kv_key = k.stride(2), .v_batch = v.stride(0),
                      .v_head = v.stride(1), .v_key = v.stride(2), .blocked_batch = blocked.stride(0),
                      .blocked_key = blocked.stride(3)};
  auto out = torch::empty({q.size(0), q.size(1), 1, q.size(3)}, q.options());
  const auto factor = static_cast<float>(scale);
  if (q.scalar_type() == torch::kFloat32) attend_all<float>(layout, q.size(0), q, k, v, blocked, factor, out);
  else attend_all<c10::BFloat16>(layout, q.size(0), q, k, v, blocked, factor, out);
  return out;
}

}  // namespace accel::models::detail
