#include "rows_product.h"

#include "accel/core/error.h"
#include "simd.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>

#include <algorithm>

namespace accel::models::detail {
namespace {

using simd::load;
using simd::Vectors;
using simd::widen;

// [out, in] weights: up to kRows rows are summed in one pass over a block of output columns, each
// weight vector loaded once for all of them; the block is as wide as the registers allow next to
// the rows' sums: R x C sums, C weight vectors (two float vectors each for bfloat16) and one x
// vector in 16 registers (AVX2 and before) or 32 (AVX-512). Fewer rows, wider blocks: a row alone
// still has several independent sums in flight.
constexpr int kRows = 8;
constexpr int kMaxColumns = 8;
// Beyond kRows rows, passes of this many: blocks of more columns, so more multiply-adds per load
// (on AVX2 4 x 3 sums: 7 loads for 12 multiply-adds, against 9 for 8 at 8 x 1).
constexpr int kRowsPerPass = 4;

template <int Lanes, int R, class Weight>
constexpr int kColumnsFor =
    std::clamp(((Lanes == 16 ? 32 : 16) - 1) / (R + (sizeof(Weight) == 2 ? 2 : 1)), 1, kMaxColumns);

// How far ahead of each weight row being summed its bytes are asked for: a pass of many rows over
// few weights would otherwise wait for memory at every new cache line, while the passes that
// find the block in L1 leave memory idle. (A prefetch past the weight's end does not fault.)
constexpr std::int64_t kPrefetchBytes = 4096;

template <class Weight>
[[gnu::always_inline]] inline void prefetch_ahead(const Weight* row) {
  __builtin_prefetch(row + kPrefetchBytes / sizeof(Weight), 0, 3);
}

// [in, out] weights: kInOutRows rows x kColumns vectors of columns at once.
constexpr int kInOutRows = 4;
constexpr int kColumns = 3;
// [in, out] weights: the rows of `in` a pass over all the columns covers. Memory is then read as
// kInRows sequential streams (a whole row of the weight each), which the prefetcher follows, while
// each block of columns of the pass stays in the L1 cache for every block of rows; the sums wait
// in y between passes (one load and store of each per kInRows multiply-adds).
constexpr std::int64_t kInRows = 16;

// ---- [out, in] weights: output c is row c of the weight dotted with x.
//
// Every (row, column) sums into one vector over `in` in steps of Lanes (for bfloat16, steps of
// 2 x Lanes values read as Lanes 32-bit words: the even values, then the odd ones, against x in
// pair order), then adds the lanes pairwise and the last values one by one: an order fixed by
// `in` alone.

template <int Lanes, int R, int C>
[[gnu::always_inline]] inline void out_in_block(const float* w, const float* x, float* y, std::int64_t in,
                                                std::int64_t out) {
  using Floats = typename Vectors<Lanes>::Floats;
  Floats sums[R][C] = {};
  std::int64_t i = 0;
  for (; i + Lanes <= in; i += Lanes) {
    Floats weights[C], xs;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      prefetch_ahead(w + c * in + i);
      load(weights[c], w + c * in + i);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      load(xs, x + r * in + i);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) sums[r][c] += weights[c] * xs;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float sum = simd::horizontal_sum<Lanes>(sums[r][c]);
      for (std::int64_t k = i; k < in; ++k) sum += w[c * in + k] * x[r * in + k];
      y[r * out + c] = sum;
    }
}

template <int Lanes, int R, int C>
[[gnu::always_inline]] inline void out_in_block(const std::uint16_t* w, const float* x, float* y, std::int64_t in,
                                                std::int64_t out) {
  using Floats = typename Vectors<Lanes>::Floats;
  Floats sums[R][C] = {};
  std::int64_t i = 0;
  for (; i + 2 * Lanes <= in; i += 2 * Lanes) {
    Floats even[C], odd[C], xs;
    typename Vectors<Lanes>::Words words;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      prefetch_ahead(w + c * in + i);
      load(words, w + c * in + i);
      even[c] = __builtin_bit_cast(Floats, words << 16);
      odd[c] = __builtin_bit_cast(Floats, words & 0xffff0000u);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      load(xs, x + r * in + i);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) sums[r][c] += even[c] * xs;
      load(xs, x + r * in + i + Lanes);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) sums[r][c] += odd[c] * xs;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float sum = simd::horizontal_sum<Lanes>(sums[r][c]);
      for (std::int64_t k = i; k < in; ++k) sum += widen(w[c * in + k]) * x[r * in + k];
      y[r * out + c] = sum;
    }
}

// ---- [in, out] weights: y[r, c] = the sum over i, in order, of x[r, i] times w[i, c]. A block
// of V vectors of columns runs over the rows of `in` in [first, last), continuing the sums y
// holds when first > 0 (a float32 stored and reloaded is the same float: the order is unchanged).

template <int Lanes>
[[gnu::always_inline]] inline void load_widened(typename Vectors<Lanes>::Floats& v, const float* p) {
  load(v, p);
}

template <int Lanes>
[[gnu::always_inline]] inline void load_widened(typename Vectors<Lanes>::Floats& v, const std::uint16_t* p) {
  typename Vectors<Lanes>::Halves halves;
  load(halves, p);
  const auto words = __builtin_convertvector(halves, typename Vectors<Lanes>::Words) << 16;
  v = __builtin_bit_cast(typename Vectors<Lanes>::Floats, words);
}

template <int Lanes, int R, int V, class Weight>
[[gnu::always_inline]] inline void in_out_block(const Weight* w, const float* x, float* y, std::int64_t in,
                                                std::int64_t out, std::int64_t first, std::int64_t last) {
  using Floats = typename Vectors<Lanes>::Floats;
  Floats sums[R][V] = {};
  if (first > 0)
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) load(sums[r][v], y + r * out + v * Lanes);
  for (std::int64_t i = first; i < last; ++i) {
    Floats weights[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) load_widened<Lanes>(weights[v], w + i * out + v * Lanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      Floats xs = {};
      xs += x[r * in + i];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) sums[r][v] += weights[v] * xs;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) std::memcpy(y + r * out + v * Lanes, &sums[r][v], sizeof sums[r][v]);
}

// Columns past the last whole vector, one at a time, in the same order.
template <class Weight>
[[gnu::always_inline]] inline void in_out_tail(const Weight* w, const float* x, float* y, std::int64_t rows,
                                               std::int64_t in, std::int64_t out, std::int64_t columns,
                                               std::int64_t first, std::int64_t last) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < columns; ++c) {
      float sum = first > 0 ? y[r * out + c] : 0.0f;
      for (std::int64_t i = first; i < last; ++i) sum += widen(w[i * out + c]) * x[r * in + i];
      y[r * out + c] = sum;
    }
}

// ---- Dispatch. Every output sums its terms in the same order however the outputs are blocked, so
// a shape is chosen for speed alone, and few are compiled: each row count's widest block, one
// column wide for the columns left over, and one row alone for the rows left over.

template <int Lanes, int R, int V, class Weight, class... Args>
[[gnu::always_inline]] inline void in_out_shape(int rows, int vectors, const Weight* w, Args... args) {
  if constexpr (R > 1)
    if (rows < R) return in_out_shape<Lanes, R - 1, V>(rows, vectors, w, args...);
  if constexpr (V > 1)
    if (vectors < V) return in_out_shape<Lanes, R, V - 1>(rows, vectors, w, args...);
  in_out_block<Lanes, R, V>(w, args...);
}

// R rows (x, y at their first) over the columns [first, last).
template <int Lanes, int R, class Weight>
[[gnu::always_inline]] inline void out_in_rows(const Weight* w, const float* x, float* y, std::int64_t first,
                                               std::int64_t last, std::int64_t in, std::int64_t out) {
  constexpr int C = kColumnsFor<Lanes, R, Weight>;
  std::int64_t c = first;
  for (; c + C <= last; c += C) out_in_block<Lanes, R, C>(w + c * in, x, y + c, in, out);
  for (; c < last; ++c) out_in_block<Lanes, R, 1>(w + c * in, x, y + c, in, out);
}

// The columns go in chunks whose weights stay in the L2 cache while each pass of R rows (their x
// in L1) runs over the chunk; only the first pass reads them from memory. Rows past the last
// whole pass go one at a time over the chunk.
constexpr std::int64_t kChunkBytes = 128 * 1024;

template <int Lanes, int R, class Weight>
[[gnu::always_inline]] inline void out_in_passes(const Weight* w, const RowsProblem& p, float* y, std::int64_t begin,
                                                 std::int64_t end) {
  constexpr int C = kColumnsFor<Lanes, R, Weight>;
  const std::int64_t chunk = std::max<std::int64_t>(1, kChunkBytes / (p.in * std::int64_t{sizeof(Weight)} * C)) * C;
  for (std::int64_t first = begin; first < end; first += chunk) {
    const auto last = std::min(end, first + chunk);
    std::int64_t r = 0;
    for (; r + R <= p.rows; r += R) out_in_rows<Lanes, R>(w, p.x + r * p.in, y + r * p.out, first, last, p.in, p.out);
    for (; r < p.rows; ++r) out_in_rows<Lanes, 1>(w, p.x + r * p.in, y + r * p.out, first, last, p.in, p.out);
  }
}

// Up to kRows rows in one pass, the block shape following their number; more in passes of
// kRowsPerPass.
template <int Lanes, int R, class Weight>
[[gnu::always_inline]] inline void out_in_columns(const Weight* w, const RowsProblem& p, float* y, std::int64_t begin,
                                                  std::int64_t end) {
  if constexpr (R == kRows)
    if (p.rows > kRows) return out_in_passes<Lanes, kRowsPerPass>(w, p, y, begin, end);
  if constexpr (R > 1)
    if (p.rows < R) return out_in_columns<Lanes, R - 1>(w, p, y, begin, end);
  out_in_passes<Lanes, R>(w, p, y, begin, end);
}

template <int Lanes, class Weight>
[[gnu::always_inline]] inline void in_out_columns(const Weight* w, const RowsProblem& p, float* y,
                                                  std::int64_t begin, std::int64_t end) {
  constexpr std::int64_t kBlock = kColumns * Lanes;
  const std::int64_t vector_end = begin + (end - begin) / Lanes * Lanes;
  for (std::int64_t first = 0; first < p.in; first += kInRows) {
    const auto last = std::min(p.in, first + kInRows);
    for (std::int64_t c = begin; c < vector_end; c += kBlock)
      for (std::int64_t r = 0; r < p.rows; r += kInOutRows)
        in_out_shape<Lanes, kInOutRows, kColumns>(static_cast<int>(std::min<std::int64_t>(kInOutRows, p.rows - r)),
                                             static_cast<int>(std::min(kBlock, vector_end - c) / Lanes), w + c,
                                             p.x + r * p.in, y + r * p.out + c, p.in, p.out, first, last);
    in_out_tail(w + vector_end, p.x, y + vector_end, p.rows, p.in, p.out, end - vector_end, first, last);
  }
}

template <int Lanes>
[[gnu::always_inline]] inline void columns(const RowsProblem& p, float* y, std::int64_t begin, std::int64_t end) {
  const auto* floats = static_cast<const float*>(p.weight);
  const auto* halves = static_cast<const std::uint16_t*>(p.weight);
  if (p.stored_in_out && p.bfloat16) in_out_columns<Lanes>(halves, p, y, begin, end);
  else if (p.stored_in_out) in_out_columns<Lanes>(floats, p, y, begin, end);
  else if (p.bfloat16) out_in_columns<Lanes, kRows>(halves, p, y, begin, end);
  else out_in_columns<Lanes, kRows>(floats, p, y, begin, end);
}

void plain_columns(const RowsProblem& p, float* y, std::int64_t begin, std::int64_t end) {
  columns<4>(p, y, begin, end);
}

#if defined(__x86_64__)
[[gnu::target("avx512f")]] void avx512_columns(const RowsProblem& p, float* y, std::int64_t begin,
                                               std::int64_t end) {
  columns<16>(p, y, begin, end);
}

[[gnu::target("avx2,fma")]] void avx2_columns(const RowsProblem& p, float* y, std::int64_t begin,
                                              std::int64_t end) {
  columns<8>(p, y, begin, end);
}
#endif

// The column unit keeps a thread's share of an [in, out] weight to whole blocks of vectors
// (and the tail columns to the last share); for [out, in] any column would do.
std::vector<RowsKernel> supported_rows_kernels() {
  std::vector<RowsKernel> kernels;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernels.push_back({"avx2", 8, kColumns * 8, avx2_columns});
  if (__builtin_cpu_supports("avx512f")) kernels.push_back({"avx512", 16, kColumns * 16, avx512_columns});
#endif
  kernels.push_back({"plain", 4, kColumns * 4, plain_columns});
  return kernels;
}

// x as float32 [rows, in]: its own memory when it already is, else widened into `storage`; for
// a bfloat16 [out, in] weight, each block of 2 x lanes values reordered as the words read them
// (its even-indexed values, then its odd-indexed ones).
const float* prepared_rows(const at::Tensor& x, const RowsProblem& p, std::int64_t lanes,
                           std::vector<float>& storage) {
  const bool pairs = p.bfloat16 && !p.stored_in_out;
  if (!pairs && x.is_contiguous() && x.scalar_type() == at::kFloat) return x.data_ptr<float>();
  const auto floats = x.reshape({p.rows, p.in}).to(at::kFloat).contiguous();
  const float* source = floats.data_ptr<float>();
  storage.assign(source, source + p.rows * p.in);
  if (!pairs) return storage.data();
  const auto block = 2 * lanes;
  for (std::int64_t r = 0; r < p.rows; ++r)
    for (std::int64_t start = 0; start + block <= p.in; start += block)
      for (std::int64_t k = 0; k < lanes; ++k) {
        storage[r * p.in + start + k] = source[r * p.in + start + 2 * k];
        storage[r * p.in + start + lanes + k] = source[r * p.in + start + 2 * k + 1];
      }
  return storage.data();
}

}  // namespace

const std::vector<RowsKernel>& rows_kernels() {
  static const std::vector<RowsKernel> kernels = supported_rows_kernels();
  return kernels;
}

bool rows_product_applies(const at::Tensor& x, const at::Tensor& weight) {
  const auto dtype = weight.scalar_type();
  if ((dtype != at::kFloat && dtype != at::kBFloat16) || x.scalar_type() != dtype ||
      !weight.device().is_cpu() || !x.device().is_cpu() || weight.dim() != 2 || x.dim() == 0)
    return false;
  return x.size(-1) == weight.size(1) && (weight.is_contiguous() || weight.t().is_contiguous());
}

at::Tensor rows_product(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                        const RowsKernel& kernel) {
  if (!rows_product_applies(x, weight))
    throw UsageError("rows_product takes rows of " + std::to_string(weight.size(-1)) + " values and a float32 " +
                     "or bfloat16 CPU weight of the same dtype stored contiguous either way round; got x " +
                     c10::str(x.sizes()) + " " + c10::toString(x.scalar_type()) + " and weight " +
                     c10::str(weight.sizes()) + " with strides " + c10::str(weight.strides()));
  const auto out_size = weight.size(0), in_size = weight.size(1);
  if (bias.defined() && bias.numel() != out_size)
    throw UsageError("rows_product's bias has " + std::to_string(bias.numel()) + " values for a weight of " +
                     std::to_string(out_size) + " outputs");
  RECORD_FUNCTION("accel::rows_product", std::vector<c10::IValue>({x, weight}));  // a row in profiles
  const bool bfloat16 = weight.scalar_type() == at::kBFloat16;
  RowsProblem problem{weight.data_ptr(), bfloat16, !weight.is_contiguous(), nullptr, x.numel() / in_size,
                      in_size, out_size};
  std::vector<float> rows;
  problem.x = prepared_rows(x, problem, kernel.lanes, rows);
  auto sizes = x.sizes().vec();
  sizes.back() = out_size;
  auto out = at::empty(sizes, at::TensorOptions().dtype(weight.scalar_type()));
  std::vector<float> sums;
  if (bfloat16) sums.resize(static_cast<std::size_t>(problem.rows * out_size));
  float* y = bfloat16 ? sums.data() : out.data_ptr<float>();
  // Shares of whole column units, each reading at least 64 KiB of weights.
  const auto unit_bytes = kernel.column_unit * in_size * (bfloat16 ? 2 : 4);
  const auto units = (out_size + kernel.column_unit - 1) / kernel.column_unit;
  at::parallel_for(0, units, std::max<std::int64_t>(1, (std::int64_t{1} << 16) / unit_bytes),
                   [&](std::int64_t begin, std::int64_t end) {
                     kernel.columns(problem, y, begin * kernel.column_unit,
                                    std::min(out_size, end * kernel.column_unit));
                   });
  if (bias.defined()) {
    const auto b = bias.to(at::kFloat).contiguous();
    const float* values = b.data_ptr<float>();
    for (std::int64_t r = 0; r < problem.rows; ++r)
      for (std::int64_t c = 0; c < out_size; ++c) y[r * out_size + c] += values[c];
  }
  if (bfloat16) std::copy_n(y, problem.rows * out_size, out.data_ptr<c10::BFloat16>());
  return out;
}

}  // namespace accel::models::detail
