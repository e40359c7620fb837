#pragma once
// Matrix-vector products for decoding one token of one sequence, where a step does nothing but
// read weights: LibTorch has no bfloat16 gemv (its one-row path runs through oneDNN's gemm at
// about half the memory bandwidth) and BLAS's float32 gemv trails a plain streaming read. Private
// to lib/models.
#include <torch/torch.h>

namespace accel::models::detail {

// Whether gemv() takes x and weight: x holds one row ([..., in] with every other dim 1), the
// weight is a contiguous [out, in] CPU tensor, both float32 or both bfloat16.
bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight);

// x times weight^T (+ bias when defined), shaped as x with `out` last, in the weight's dtype;
// sums run in float32 over torch's intra-op threads. UsageError unless gemv_applies.
torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace accel::models::detail
