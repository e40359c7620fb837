#pragma once
// Attention for one query per row, as in every decode step. The general path (attend() in
// block_common.h) spends a step's attention in small tensor operations: batched matmuls that
// loop over heads, select each matrix and call BLAS (some 3000 operations per GPT-2 step).
// Here each (row, head) is one pass over plain memory. Private to lib/models.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace accel::models::detail {

// Whether attend_one_query() takes these: q [B,H,1,D], k and v [B,H/G,K,D] and blocked
// [B,1,1,K] booleans on the CPU, q, k and v all float32 or all bfloat16, each row of D values
// contiguous.
bool one_query_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& blocked);

// attend()'s result for one query per row, [B,H,1,D] in q's dtype: scores, softmax and the
// weighted sum of values in float32, rounded once at the end; a fully blocked row gets a
// uniform distribution, as in attend(). Rows and heads are spread over torch's threads.
at::Tensor attend_one_query(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& blocked, double scale);

// Which keys each row of a slot cache attends over: row r, keys [first[r], last[r]) of slot
// slots[r].
struct SlotSpans {
  std::vector<std::int64_t> slots, first, last;
};

// One query per row over its own slot's keys: q [R,H,D], keys and values [slots, H/G, capacity,
// D], all contiguous, float32 or bfloat16 alike; the result is [R,H,D] in q's dtype. Each row
// reads only its own span (no padding, no other row's keys) and gets bitwise what
// attend_one_query gives it over the same keys, whatever the other rows. UsageError for shapes
// that do not fit or a span outside the cache.
at::Tensor attend_slots(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                        const SlotSpans& spans, double scale);

}  // namespace accel::models::detail
