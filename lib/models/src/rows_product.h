#pragma once
// Products of a few rows (2-64: a decode step over several sequences) with a weight matrix,
// reading the weights once for all rows. Unlike a blocked GEMM, every output sums its terms in
// one fixed order that depends only on `in` and the instruction set, never on the number of
// rows, how they are blocked or the number of threads: a row's result is bitwise the same
// whatever rows share its call (batch invariance). Private to lib/models.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace accel::models::detail {

// y [rows, out] = x [rows, in] times a logical [out, in] weight^T, the weight stored [out, in]
// or [in, out], float32 or bfloat16 (as its bits); x and y are float32 (x of a bfloat16
// [out, in] weight in pair order, see rows_product.cpp).
struct RowsProblem {
  const void* weight;
  bool bfloat16;
  bool stored_in_out;
  const float* x;  // [rows, in]
  std::int64_t rows, in, out;
};

// The sums compiled for one instruction set, for the outputs (columns) in [begin, end), which
// callers give as multiples of column_unit except at `out`.
struct RowsKernel {
  const char* name;  // "avx512", "avx2" or "plain"
  std::int64_t lanes;  // float32 values per vector
  std::int64_t column_unit;
  void (*columns)(const RowsProblem& problem, float* y, std::int64_t begin, std::int64_t end);
};

// Up to this many float32 rows rows_product() beats BLAS gemm, which packs the weights before
// using them; beyond it the products are bound by arithmetic and gemm's blocking wins
// (models_bench --mixed 1, docs/benchmarks.md).
constexpr std::int64_t kRowsFasterThanGemm = 32;

// The kernels this CPU runs, the default first; the last ("plain") runs on any CPU.
const std::vector<RowsKernel>& rows_kernels();

// Whether rows_product() takes x [..., in] (any number of rows) and weight: a logical [out, in]
// CPU tensor stored contiguous either way round, both float32 or both bfloat16.
bool rows_product_applies(const at::Tensor& x, const at::Tensor& weight);

// x times weight^T (+ bias when defined), shaped as x with `out` last, in the weight's dtype:
// summed in float32 in the fixed order above, over torch's intra-op threads by output columns,
// bias added after the sum, rounded once. UsageError unless rows_product_applies.
at::Tensor rows_product(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                        const RowsKernel& kernel = rows_kernels().front());

}  // namespace accel::models::detail
