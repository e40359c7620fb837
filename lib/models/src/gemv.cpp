#include "gemv.h"

#include "simd.h"

#include "accel/core/error.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace accel::models::detail {
namespace {

using simd::load;
using simd::Vectors;
using simd::widen;

// A bfloat16 row is read 32 values at a time as 32-bit words, each a pair of values: the even
// one is the word shifted up, the odd one the word's upper half. x is reordered to match, once
// per call: in each block of 32, its even-indexed values, then its odd-indexed ones.
constexpr std::int64_t kPairBlock = 32;

std::vector<float> pair_order(const float* x, std::int64_t in) {
  std::vector<float> ordered(x, x + in);
  for (std::int64_t block = 0; block + kPairBlock <= in; block += kPairBlock)
    for (std::int64_t k = 0; k < kPairBlock / 2; ++k) {
      ordered[block + k] = x[block + 2 * k];
      ordered[block + kPairBlock / 2 + k] = x[block + 2 * k + 1];
    }
  return ordered;
}

// Independent vector sums per row, so that loads stay in flight while an addition's latency runs.
constexpr int kChains = 4;

// The chains' total plus the row's last `rest` values (fewer than a vector or a pair block).
template <int Lanes, class Weight>
[[gnu::always_inline]] inline float finish(typename Vectors<Lanes>::Floats (&sums)[kChains], const Weight* row,
                                           const float* x, std::int64_t rest) {
  for (int k = 1; k < kChains; ++k) sums[0] += sums[k];
  float sum = simd::horizontal_sum<Lanes>(sums[0]);
  for (std::int64_t i = 0; i < rest; ++i) sum += widen(row[i]) * x[i];
  return sum;
}

// y[c] = row c of a [out, in] float32 weight dotted with x, for c in [begin, end). One row after
// another, so the weights are one sequential stream: taking several rows at a time measured
// 25-50% slower here, as the hardware prefetcher follows one stream best.
template <int Lanes>
[[gnu::always_inline]] inline void out_in_sums(const float* w, const float* x, float* y, std::int64_t in,
                                               std::int64_t begin, std::int64_t end) {
  using Floats = typename Vectors<Lanes>::Floats;
  for (std::int64_t c = begin; c < end; ++c) {
    const float* row = w + c * in;
    Floats sums[kChains] = {}, a, b;
    std::int64_t i = 0;
    for (; i + kChains * Lanes <= in; i += kChains * Lanes)
      for (int k = 0; k < kChains; ++k) load(a, row + i + k * Lanes), load(b, x + i + k * Lanes), sums[k] += a * b;
    for (; i + Lanes <= in; i += Lanes) load(a, row + i), load(b, x + i), sums[0] += a * b;
    y[c] = finish<Lanes>(sums, row + i, x + i, in - i);
  }
}

// One block of kPairBlock bfloat16 values of a row times x in pair_order: each 32-bit word gives
// the even and the odd value of a pair, summed into chains `chain` and `chain + 1`.
template <int Lanes>
[[gnu::always_inline]] inline void add_pair_block(typename Vectors<Lanes>::Floats (&sums)[kChains],
                                                  const std::uint16_t* block, const float* paired, int chain) {
  using Floats = typename Vectors<Lanes>::Floats;
  constexpr std::int64_t kHalf = kPairBlock / 2;
  static_assert(kHalf % Lanes == 0, "a pair block holds whole vectors");
  typename Vectors<Lanes>::Words words;
  Floats a, b;
  for (std::int64_t k = 0; k < kHalf; k += Lanes) {
    load(words, block + 2 * k);
    a = __builtin_bit_cast(Floats, words << 16), load(b, paired + k), sums[chain] += a * b;
    a = __builtin_bit_cast(Floats, words & 0xffff0000u), load(b, paired + kHalf + k), sums[chain + 1] += a * b;
  }
}

// out_in_sums for a bfloat16 weight, with x in pair_order: two blocks at a time, four chains.
template <int Lanes>
[[gnu::always_inline]] inline void out_in_sums(const std::uint16_t* w, const float* paired, float* y,
                                               std::int64_t in, std::int64_t begin, std::int64_t end) {
  static_assert(kChains == 4, "two pair blocks at a time fill the chains");
  for (std::int64_t c = begin; c < end; ++c) {
    const std::uint16_t* row = w + c * in;
    typename Vectors<Lanes>::Floats sums[kChains] = {};
    std::int64_t i = 0;
    for (; i + 2 * kPairBlock <= in; i += 2 * kPairBlock) {
      add_pair_block<Lanes>(sums, row + i, paired + i, 0);
      add_pair_block<Lanes>(sums, row + i + kPairBlock, paired + i + kPairBlock, 2);
    }
    for (; i + kPairBlock <= in; i += kPairBlock) add_pair_block<Lanes>(sums, row + i, paired + i, 0);
    y[c] = finish<Lanes>(sums, row + i, paired + i, in - i);
  }
}

// y = the sum of x[i] times row i of a [in, out] weight over the rows i in [begin, end), one row
// after another (one stream, as above) while y stays in the L1 cache.
template <int Lanes, class Weight>
[[gnu::always_inline]] inline void in_out_sums(const Weight* w, const float* x, float* y, std::int64_t out,
                                               std::int64_t begin, std::int64_t end) {
  using Floats = typename Vectors<Lanes>::Floats;
  std::fill(y, y + out, 0.0f);
  for (std::int64_t i = begin; i < end; ++i) {
    const Weight* row = w + i * out;
    std::int64_t c = 0;
    if constexpr (std::is_same_v<Weight, float>)
      for (Floats sum, a; c + Lanes <= out; c += Lanes) {
        load(sum, y + c), load(a, row + c), sum += a * x[i];
        std::memcpy(y + c, &sum, sizeof sum);
      }
    for (; c < out; ++c) y[c] += widen(row[c]) * x[i];
  }
}

template <int Lanes>
[[gnu::always_inline]] inline void sums(const GemvProblem& p, float* y, std::int64_t begin, std::int64_t end) {
  const auto* floats = static_cast<const float*>(p.weight);
  const auto* halves = static_cast<const std::uint16_t*>(p.weight);
  if (p.stored_in_out && p.bfloat16) in_out_sums<Lanes>(halves, p.x, y, p.out, begin, end);
  else if (p.stored_in_out) in_out_sums<Lanes>(floats, p.x, y, p.out, begin, end);
  else if (p.bfloat16) out_in_sums<Lanes>(halves, pair_order(p.x, p.in).data(), y, p.in, begin, end);
  else out_in_sums<Lanes>(floats, p.x, y, p.in, begin, end);
}

void plain_sums(const GemvProblem& p, float* y, std::int64_t begin, std::int64_t end) { sums<4>(p, y, begin, end); }

#if defined(__x86_64__)
[[gnu::target("avx512f")]] void avx512_sums(const GemvProblem& p, float* y, std::int64_t begin, std::int64_t end) {
  sums<16>(p, y, begin, end);
}

[[gnu::target("avx2,fma")]] void avx2_sums(const GemvProblem& p, float* y, std::int64_t begin, std::int64_t end) {
  sums<8>(p, y, begin, end);
}
#endif

// AVX2 before AVX-512: these sums wait on memory, and where a 512-bit operation issues as two
// 256-bit halves (AMD Zen 4) the AVX-512 build read bfloat16 weights 13% slower and float32 ones
// no faster (models_bench --kernels 1).
std::vector<GemvKernel> supported_gemv_kernels() {
  std::vector<GemvKernel> kernels;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) kernels.push_back({"avx2", avx2_sums});
  if (__builtin_cpu_supports("avx512f")) kernels.push_back({"avx512", avx512_sums});
#endif
  kernels.push_back({"plain", plain_sums});
  return kernels;
}

}  // namespace

const std::vector<GemvKernel>& gemv_kernels() {
  static const std::vector<GemvKernel> kernels = supported_gemv_kernels();
  return kernels;
}

bool gemv_applies(const at::Tensor& x, const at::Tensor& weight) {
  const auto dtype = weight.scalar_type();
  if ((dtype != at::kFloat && dtype != at::kBFloat16) || x.scalar_type() != dtype ||
      !weight.device().is_cpu() || weight.dim() != 2 || x.dim() == 0)
    return false;
  const bool one_row = x.numel() == x.size(-1) && x.size(-1) == weight.size(1);
  return one_row && (weight.is_contiguous() || weight.t().is_contiguous());
}

namespace {

// A one-row tensor's values as float32: its own memory when it is a contiguous float32 row,
// else widened into `storage`. No tensor operation runs: at a few hundred nanoseconds each,
// they add up over the 49 products of a decode step.
const float* float_row(const at::Tensor& row, std::vector<float>& storage) {
  if (row.is_contiguous() && row.scalar_type() == at::kFloat) return row.data_ptr<float>();
  storage.resize(static_cast<std::size_t>(row.numel()));
  if (row.is_contiguous() && row.scalar_type() == at::kBFloat16) {
    const auto* bits = static_cast<const std::uint16_t*>(row.data_ptr());
    std::transform(bits, bits + row.numel(), storage.begin(), [](std::uint16_t b) { return widen(b); });
  } else {
    const auto widened = row.reshape({-1}).to(at::kFloat).contiguous();
    std::copy_n(widened.data_ptr<float>(), row.numel(), storage.begin());
  }
  return storage.data();
}

// y = the product, over torch's intra-op threads. Each thread reads one contiguous share of the
// weights, at least 64 KiB (a thread's start costs microseconds): whole rows of a [out, in]
// weight, each giving its y values, or consecutive rows of a [in, out] one, each thread summing
// into its own partial y.
void spread_sums(const GemvKernel& kernel, const GemvProblem& problem, float* y) {
  const auto stored_rows = problem.stored_in_out ? problem.in : problem.out;
  const auto row_bytes = (problem.stored_in_out ? problem.out : problem.in) * (problem.bfloat16 ? 2 : 4);
  const auto grain = std::max<std::int64_t>(1, (std::int64_t{1} << 16) / std::max<std::int64_t>(1, row_bytes));
  if (!problem.stored_in_out) {
    at::parallel_for(0, stored_rows, grain, [&](std::int64_t begin, std::int64_t end) {
      kernel.sums(problem, y, begin, end);
    });
    return;
  }
  const auto shares = std::clamp<std::int64_t>(stored_rows / grain, 1, at::get_num_threads());
  if (shares == 1) return kernel.sums(problem, y, 0, stored_rows);
  std::vector<float> partial(static_cast<std::size_t>(shares * problem.out));
  at::parallel_for(0, shares, 1, [&](std::int64_t first, std::int64_t last) {
    for (auto share = first; share < last; ++share)
      kernel.sums(problem, partial.data() + share * problem.out, share * stored_rows / shares,
                  (share + 1) * stored_rows / shares);
  });
  std::copy_n(partial.data(), problem.out, y);
  for (std::int64_t share = 1; share < shares; ++share)
    for (std::int64_t c = 0; c < problem.out; ++c) y[c] += partial[share * problem.out + c];
}

}  // namespace

at::Tensor gemv(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                const GemvKernel& kernel) {
  if (!gemv_applies(x, weight))
    throw UsageError("gemv takes one row of " + std::to_string(weight.size(-1)) + " values and a float32 or " +
                     "bfloat16 CPU weight of the same dtype stored contiguous either way round; got x " +
                     c10::str(x.sizes()) + " " + c10::toString(x.scalar_type()) + " and weight " +
                     c10::str(weight.sizes()) + " with strides " + c10::str(weight.strides()));
  const auto out_size = weight.size(0), in_size = weight.size(1);
  if (bias.defined() && bias.numel() != out_size)
    throw UsageError("gemv's bias has " + std::to_string(bias.numel()) + " values for a weight of " +
                     std::to_string(out_size) + " outputs");
  RECORD_FUNCTION("accel::gemv", std::vector<c10::IValue>({x, weight}));  // a row in profiles
  std::vector<float> input, bias_values, sums;
  const bool bfloat16 = weight.scalar_type() == at::kBFloat16;
  const GemvProblem problem{weight.data_ptr(), bfloat16, !weight.is_contiguous(), float_row(x, input), in_size,
                            out_size};
  auto sizes = x.sizes().vec();
  sizes.back() = out_size;
  auto out = at::empty(sizes, at::TensorOptions().dtype(weight.scalar_type()));
  // float32 sums land in the result itself; bfloat16 ones are rounded once, bias included.
  if (bfloat16) sums.resize(static_cast<std::size_t>(out_size));
  float* y = bfloat16 ? sums.data() : out.data_ptr<float>();
  spread_sums(kernel, problem, y);
  if (bias.defined()) {
    const float* b = float_row(bias, bias_values);
    for (std::int64_t c = 0; c < out_size; ++c) y[c] += b[c];
  }
  if (bfloat16) std::copy_n(y, out_size, out.data_ptr<c10::BFloat16>());  // rounds to nearest even
  return out;
}

}  // namespace accel::models::detail
