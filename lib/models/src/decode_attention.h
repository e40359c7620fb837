#pragma once
// Attention for one query per row, as in every decode step. The general path (attend() in
// block_common.h) spends a step's attention in small tensor operations: batched matmuls that
// loop over heads, select each matrix and call BLAS (some 3000 operations per GPT-2 step).
// Here each (row, head) is one pass over plain memory. Private to lib/models.
#include <torch/torch.h>

namespace accel::models::detail {

// Whether attend_one_query() takes these: q [B,H,1,D], k and v [B,H/G,K,D] and blocked
// [B,1,1,K] booleans on the CPU, q, k and v all float32 or all bfloat16, each row of D values
// contiguous.
bool one_query_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& blocked);

// attend()'s result for one query per row, [B,H,1,D] in q's dtype: scores, softmax and the
// weighted sum of values in float32, rounded once at the end; a fully blocked row gets a
// uniform distribution, as in attend(). Rows and heads are spread over torch's threads.
torch::Tensor attend_one_query(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& blocked, double scale);

}  // namespace accel::models::detail
