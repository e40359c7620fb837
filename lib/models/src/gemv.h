#pragma once
// Matrix-vector products for decoding one token of one sequence, where a step does little but
// read weights: LibTorch 1.13 has no bfloat16 gemv (one bfloat16 row runs through oneDNN's gemm
// at about a third of the memory bandwidth), and BLAS's float32 gemv reads 25-35% below it
// (models_bench --kernels 1). Private to lib/models.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace accel::models::detail {

// One product: y = W x for a logical [out, in] weight, stored [out, in] (torch's Linear
// layout) or [in, out] (GPT-2's Conv1D layout), float32 or bfloat16 (as its bits); x and y are
// float32 and the sums run in float32.
struct GemvProblem {
  const void* weight;
  bool bfloat16;
  bool stored_in_out;
  const float* x;  // `in` values
  std::int64_t in, out;
};

// The sums compiled for one instruction set, over the stored rows in [begin, end) (the unit
// that one stream of reads covers): for a [out, in] weight, y[c] for c in [begin, end); for a
// [in, out] weight, y (all `out` values) = the sum of x[i] times row i for i in [begin, end).
struct GemvKernel {
  const char* name;  // "avx512", "avx2" or "plain"
  void (*sums)(const GemvProblem& problem, float* y, std::int64_t begin, std::int64_t end);
};

// The kernels this CPU runs, the one gemv() uses by default first; the last ("plain") runs on
// any CPU.
const std::vector<GemvKernel>& gemv_kernels();

// Whether gemv() takes x and weight: x holds one row ([..., in] with every other dim 1); the
// weight is a logical [out, in] CPU tensor stored contiguous either way round (a Linear
// weight, or the .t() of a Conv1D one); both float32 or both bfloat16.
bool gemv_applies(const at::Tensor& x, const at::Tensor& weight);

// x times weight^T (+ bias when defined), shaped as x with `out` last, in the weight's dtype:
// summed in float32 over torch's intra-op threads and rounded once at the end. UsageError
// unless gemv_applies.
at::Tensor gemv(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                const GemvKernel& kernel = gemv_kernels().front());

}  // namespace accel::models::detail
