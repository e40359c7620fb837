#include "gemv.h"

#include "accel/core/error.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace accel::models::detail {
namespace {

inline float widen(float value) { return value; }

// bfloat16 is the upper half of a float32.
inline float widen(std::uint16_t bits) {
  const std::uint32_t word = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof value);
  return value;
}

// y[j] = sum_i w[j, i] * x[i] for `rows` rows of `cols` weights. Lanes of independent partial
// sums let the compiler vectorise without reordering any one sum.
template <class Weight>
__attribute__((always_inline)) inline void dot_rows(const Weight* w, const float* x, float* y,
                                                    std::int64_t rows, std::int64_t cols) {
  constexpr int kLanes = 32;
  for (std::int64_t j = 0; j < rows; ++j) {
    const Weight* row = w + j * cols;
    float lanes[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= cols; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += widen(row[i + l]) * x[i + l];
    float sum = 0;
    for (int l = 0; l < kLanes; ++l) sum += lanes[l];
    for (; i < cols; ++i) sum += widen(row[i]) * x[i];
    y[j] = sum;
  }
}

// One body, compiled for AVX-512, AVX2 and the baseline; the loader picks what the CPU has.
__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void dot_rows_float(
    const float* w, const float* x, float* y, std::int64_t rows, std::int64_t cols) {
  dot_rows(w, x, y, rows, cols);
}

__attribute__((target_clones("avx512f", "avx2,fma", "default"))) void dot_rows_bfloat16(
    const std::uint16_t* w, const float* x, float* y, std::int64_t rows, std::int64_t cols) {
  dot_rows(w, x, y, rows, cols);
}

}  // namespace

bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto dtype = weight.scalar_type();
  return (dtype == torch::kFloat32 || dtype == torch::kBFloat16) && weight.device().is_cpu() &&
         weight.dim() == 2 && weight.is_contiguous() && x.scalar_type() == dtype &&
         x.numel() == x.size(-1) && x.size(-1) == weight.size(1);
}

torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!gemv_applies(x, weight))
    throw UsageError("gemv takes one row of " + std::to_string(weight.size(-1)) + " values and a contiguous " +
                     "float32 or bfloat16 CPU weight of the same dtype; got x " + c10::str(x.sizes()) + " " +
                     c10::toString(x.scalar_type()) + " and weight " + c10::str(weight.sizes()));
  RECORD_FUNCTION("accel::gemv", std::vector<c10::IValue>({x, weight}));  // a row in profiles
  const auto rows = weight.size(0), cols = weight.size(1);
  const auto input = x.reshape({cols}).to(torch::kFloat32).contiguous();
  auto out = torch::empty({rows}, torch::kFloat32);
  const float* in = input.data_ptr<float>();
  float* y = out.data_ptr<float>();
  const bool wide = weight.scalar_type() == torch::kFloat32;
  const void* w = weight.data_ptr();
  // Rows in chunks of at least 64 KiB of weights, so a thread's share is worth starting.
  const auto grain = std::max<std::int64_t>(1, (std::int64_t{1} << 16) / (cols * weight.element_size()));
  at::parallel_for(0, rows, grain, [&](std::int64_t begin, std::int64_t end) {
    if (wide)
      dot_rows_float(static_cast<const float*>(w) + begin * cols, in, y + begin, end - begin, cols);
    else
      dot_rows_bfloat16(static_cast<const std::uint16_t*>(w) + begin * cols, in, y + begin, end - begin, cols);
  });
  if (bias.defined()) out.add_(bias);
  auto sizes = x.sizes().vec();
  sizes.back() = rows;
  return out.to(weight.scalar_type()).view(sizes);
}

}  // namespace accel::models::detail
