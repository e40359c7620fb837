#include "decode_attention.h"

#include "accel/core/error.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/record_function.h>

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

// One query's softmax(scale * q.k) over `keys` consecutive keys (the ones `hidden` marks left
// out, when given), times the values, into `result`. `scores` and `sum` are the calling thread's
// scratch. A hidden key adds exp(lowest - highest) = 0 to the total and 0 x value to the sum, so
// leaving keys out of the range instead of hiding them gives bitwise the same result.
template <class Scalar>
void attend_query(const Scalar* query, const Scalar* keys, const Scalar* values, std::int64_t count,
                  std::int64_t key_stride, std::int64_t value_stride, const bool* hidden, std::int64_t hidden_stride, std::int64_t dim,
                  float scale, Scalar* result, std::vector<float>& scores, std::vector<float>& sum) {
  float highest = std::numeric_limits<float>::lowest();
  for (std::int64_t t = 0; t < count; ++t) {
    scores[t] = hidden != nullptr && hidden[t * hidden_stride] ? std::numeric_limits<float>::lowest()
                                                               : scale * dot(query, keys + t * key_stride, dim);
    highest = std::max(highest, scores[t]);
  }
  float total = 0;
  for (std::int64_t t = 0; t < count; ++t) {
    scores[t] = std::exp(scores[t] - highest);
    total += scores[t];
  }
  std::fill(sum.begin(), sum.end(), 0.0f);
  for (std::int64_t t = 0; t < count; ++t) {
    const float weight = scores[t] / total;
    const Scalar* value = values + t * value_stride;
    for (std::int64_t d = 0; d < dim; ++d) sum[d] += weight * static_cast<float>(value[d]);
  }
  std::copy(sum.begin(), sum.end(), result);
}

// One (row, head) of attend_one_query.
template <class Scalar>
void attend_head(const Layout& l, std::int64_t batch, std::int64_t head, const Scalar* q, const Scalar* k,
                 const Scalar* v, const bool* blocked, float scale, Scalar* out, std::vector<float>& scores,
                 std::vector<float>& sum) {
  const auto kv_head = head / l.groups;
  attend_query(q + batch * l.q_batch + head * l.q_head, k + batch * l.kv_batch + kv_head * l.kv_head,
               v + batch * l.v_batch + kv_head * l.v_head, l.keys, l.kv_key, l.v_key, blocked + batch * l.blocked_batch,
               l.blocked_key, l.dim, scale, out + (batch * l.heads + head) * l.dim, scores, sum);
}

template <class Scalar>
void attend_all(const Layout& l, std::int64_t batches, const at::Tensor& q, const at::Tensor& k,
                const at::Tensor& v, const at::Tensor& blocked, float scale, at::Tensor& out) {
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

// Row r's query heads over keys [first[r], last[r]) of slot slots[r] of a [slots, kv_heads,
// capacity, dim] cache.
template <class Scalar>
void attend_slot_rows(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                      const SlotSpans& spans, float scale, at::Tensor& out) {
  const auto rows = q.size(0), heads = q.size(1), dim = q.size(2);
  const auto kv_heads = keys.size(1), capacity = keys.size(2), groups = heads / kv_heads;
  const auto* qs = q.data_ptr<Scalar>();
  const auto* ks = keys.data_ptr<Scalar>();
  const auto* vs = values.data_ptr<Scalar>();
  auto* result = out.data_ptr<Scalar>();
  const auto longest = *std::max_element(spans.last.begin(), spans.last.end());
  // A (row, head) pair is one task whatever the split, so no sum depends on the threads.
  const auto grain = std::max<std::int64_t>(1, (std::int64_t{1} << 16) / std::max<std::int64_t>(1, 2 * longest * dim));
  RECORD_FUNCTION("accel::attend_slots", std::vector<c10::IValue>({q}));  // a row in profiles
  at::parallel_for(0, rows * heads, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scores(static_cast<std::size_t>(longest)), sum(static_cast<std::size_t>(dim));
    for (auto pair = begin; pair < end; ++pair) {
      const auto row = static_cast<std::size_t>(pair / heads);
      const auto head = pair % heads;
      const auto first = spans.first[row];
      const auto offset = ((spans.slots[row] * kv_heads + head / groups) * capacity + first) * dim;
      attend_query(qs + pair * dim, ks + offset, vs + offset, spans.last[row] - first, dim, dim, nullptr, 0, dim,
                   scale, result + pair * dim, scores, sum);
    }
  });
}

}  // namespace

at::Tensor attend_slots(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                        const SlotSpans& spans, double scale) {
  const auto rows = static_cast<std::size_t>(q.dim() == 3 ? q.size(0) : -1);
  if (q.dim() != 3 || keys.dim() != 4 || values.sizes() != keys.sizes() || q.scalar_type() != keys.scalar_type() ||
      values.scalar_type() != keys.scalar_type() || !q.is_contiguous() || !keys.is_contiguous() ||
      !values.is_contiguous() || q.size(2) != keys.size(3) || q.size(1) % keys.size(1) != 0 ||
      spans.slots.size() != rows || spans.first.size() != rows || spans.last.size() != rows || rows == 0)
    throw UsageError("slot attention takes contiguous q [R,H,D] and caches [slots,H/G,capacity,D] alike, and "
                     "one span per row; got q " + c10::str(q.sizes()) + ", caches " + c10::str(keys.sizes()) +
                     " and " + std::to_string(spans.slots.size()) + " spans");
  for (std::size_t r = 0; r < rows; ++r)
    if (spans.slots[r] < 0 || spans.slots[r] >= keys.size(0) || spans.first[r] < 0 ||
        spans.first[r] >= spans.last[r] || spans.last[r] > keys.size(2))
      throw UsageError("slot attention: row " + std::to_string(r) + " spans keys [" + std::to_string(spans.first[r]) +
                       ", " + std::to_string(spans.last[r]) + ") of slot " + std::to_string(spans.slots[r]) +
                       " in a cache of " + c10::str(keys.sizes()));
  auto out = at::empty_like(q);
  const auto factor = static_cast<float>(scale);
  if (q.scalar_type() == at::kFloat) attend_slot_rows<float>(q, keys, values, spans, factor, out);
  else attend_slot_rows<c10::BFloat16>(q, keys, values, spans, factor, out);
  return out;
}

bool one_query_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& blocked) {
  const auto dtype = q.scalar_type();
  if ((dtype != at::kFloat && dtype != at::kBFloat16) || k.scalar_type() != dtype ||
      v.scalar_type() != dtype || blocked.scalar_type() != at::kBool)
    return false;
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || blocked.dim() != 4 || !q.device().is_cpu() ||
      !k.device().is_cpu() || !v.device().is_cpu() || !blocked.device().is_cpu())
    return false;
  const auto batch = q.size(0), heads = q.size(1), dim = q.size(3), kv_heads = k.size(1), keys = k.size(2);
  return q.size(2) == 1 && k.size(0) == batch && kv_heads > 0 && heads % kv_heads == 0 && k.size(3) == dim &&
         v.sizes() == k.sizes() && blocked.size(0) == batch && blocked.size(1) == 1 && blocked.size(2) == 1 &&
         blocked.size(3) == keys && q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1;
}

at::Tensor attend_one_query(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& blocked, double scale) {
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
  auto out = at::empty({q.size(0), q.size(1), 1, q.size(3)}, q.options());
  const auto factor = static_cast<float>(scale);
  if (q.scalar_type() == at::kFloat) attend_all<float>(layout, q.size(0), q, k, v, blocked, factor, out);
  else attend_all<c10::BFloat16>(layout, q.size(0), q, k, v, blocked, factor, out);
  return out;
}

}  // namespace accel::models::detail
