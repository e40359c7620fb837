// The decode-step kernels: the one-row matrix-vector products (lib/models/src/gemv.h) and the
// few-row products (rows_product.h), each variant this CPU runs called directly, and one-query
// and slot attention (decode_attention.h), against the same math in float64 and for batch
// invariance.
#include "accel/core/error.h"
#include "decode_attention.h"
#include "gemv.h"
#include "rows_product.h"

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <string>

using accel::models::detail::attend_one_query;
using accel::models::detail::attend_slots;
using accel::models::detail::gemv;
using accel::models::detail::gemv_applies;
using accel::models::detail::gemv_kernels;
using accel::models::detail::one_query_attention_applies;
using accel::models::detail::rows_kernels;
using accel::models::detail::rows_product;
using accel::models::detail::rows_product_applies;
using accel::models::detail::SlotSpans;

namespace {

// A [rows, cols] tensor of `dtype` whose data starts one element past an aligned address, so
// no load in the kernel can rely on alignment.
torch::Tensor unaligned(std::int64_t rows, std::int64_t cols, torch::ScalarType dtype) {
  const auto storage = torch::randn({rows * cols + 1}).to(dtype);
  return storage.narrow(0, 1, rows * cols).view({rows, cols});
}

// x [1, in] times weight [out, in]^T + bias in float64, rounded to `dtype` as the kernel rounds.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto product = torch::matmul(x.to(torch::kFloat64), weight.to(torch::kFloat64).t()) + bias.to(torch::kFloat64);
  return product.to(weight.scalar_type());
}

}  // namespace

TEST_CASE("gemv: every kernel this CPU runs equals the float64 product, both layouts and dtypes, any size",
          "[models][gemv]") {
  torch::manual_seed(3);
  REQUIRE(std::string(gemv_kernels().back().name) == "plain");
  // Sizes below, at and past a vector (4, 8, 16 lanes), a 32-value pair block and a 128-value
  // pass: every tail path.
  const std::vector<std::int64_t> sizes = {1, 3, 8, 17, 31, 32, 33, 64, 129, 200};
  for (const auto& kernel : gemv_kernels()) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      for (const bool stored_in_out : {false, true}) {
        for (const auto in : sizes) {
          for (const auto out : {std::int64_t{1}, std::int64_t{19}, std::int64_t{48}}) {
            INFO(kernel.name << " " << c10::toString(dtype) << (stored_in_out ? " [in, out]" : " [out, in]")
                             << " in=" << in << " out=" << out);
            const auto weight = stored_in_out ? unaligned(in, out, dtype).t() : unaligned(out, in, dtype);
            const auto x = unaligned(1, in, dtype);
            const auto bias = torch::randn({out}).to(dtype);
            REQUIRE(gemv_applies(x, weight));
            const auto got = gemv(x, weight, bias, kernel);
            REQUIRE(got.sizes() == torch::IntArrayRef({1, out}));
            REQUIRE(got.scalar_type() == dtype);
            // float32 sums in another order; bfloat16 results round once, to within one unit in
            // the last place (2^-8 relative) of the exact value.
            const double tolerance = dtype == torch::kFloat32 ? 1e-4 : 1.0 / 128;
            CHECK(torch::allclose(got.to(torch::kFloat64), reference(x, weight, bias).to(torch::kFloat64),
                                  tolerance, tolerance));
          }
        }
      }
    }
  }
}

TEST_CASE("gemv: spreading a product over threads gives the one-thread result", "[models][gemv]") {
  torch::manual_seed(4);
  const int threads = torch::get_num_threads();
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // Large enough that each layout is split: 64 KiB shares of a 4 MiB or 2 MiB weight.
    const auto weight_out_in = torch::randn({1024, 1024}).to(dtype);
    const auto weight_in_out = torch::randn({1024, 1024}).to(dtype).t();
    const auto x = torch::randn({1, 1, 1024}).to(dtype);
    for (const auto& weight : {weight_out_in, weight_in_out}) {
      torch::set_num_threads(1);
      const auto alone = gemv(x, weight, {});
      torch::set_num_threads(4);
      const auto spread = gemv(x, weight, {});
      torch::set_num_threads(threads);
      CHECK(spread.sizes() == torch::IntArrayRef({1, 1, 1024}));
      // [in, out] shares add partial sums in another order.
      CHECK(torch::allclose(spread.to(torch::kFloat32), alone.to(torch::kFloat32), 1e-4, 1e-4));
    }
  }
}

TEST_CASE("gemv: refuses what it cannot take, naming shapes, dtype, strides and the bias size", "[models][gemv]") {
  const auto weight = torch::randn({4, 6});
  CHECK_FALSE(gemv_applies(torch::randn({2, 6}), weight));                        // two rows
  CHECK_FALSE(gemv_applies(torch::randn({1, 5}), weight));                        // wrong width
  CHECK_FALSE(gemv_applies(torch::randn({1, 6}).to(torch::kBFloat16), weight));  // mixed dtypes
  CHECK_FALSE(gemv_applies(torch::randn({1, 6}, torch::kFloat64), weight.to(torch::kFloat64)));
  CHECK_FALSE(gemv_applies(torch::randn({1, 3}), weight.slice(1, 0, 6, 2)));     // strided columns
  CHECK_FALSE(gemv_applies(torch::tensor(1.0f), weight));                        // a scalar
  try {
    gemv(torch::randn({2, 6}), weight, {});
    FAIL("gemv took two rows");
  } catch (const accel::UsageError& e) {
    const std::string message = e.what();
    CHECK(message.find("one row of 6 values") != std::string::npos);
    CHECK(message.find("[2, 6]") != std::string::npos);
    CHECK(message.find("strides") != std::string::npos);
  }
  try {
    gemv(torch::randn({1, 6}), weight, torch::zeros({5}));
    FAIL("gemv took a bias of 5 values for 4 outputs");
  } catch (const accel::UsageError& e) {
    CHECK(std::string(e.what()).find("bias has 5 values for a weight of 4 outputs") != std::string::npos);
  }
}

namespace {

// softmax(scale * q k^T, blocked keys left out) v in float64, per kv head's group of query heads;
// a fully blocked row's scores are all equal, so its weights are uniform.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& blocked, double scale) {
  const auto groups = q.size(1) / k.size(1);
  const auto keys = k.to(torch::kFloat64).repeat_interleave(groups, 1);
  const auto values = v.to(torch::kFloat64).repeat_interleave(groups, 1);
  auto scores = torch::matmul(q.to(torch::kFloat64), keys.transpose(-1, -2)) * scale;
  scores = scores.masked_fill(blocked, -1e300);
  return torch::matmul(torch::softmax(scores, -1), values);
}

}  // namespace

TEST_CASE("one-query attention equals the float64 math: grouped heads, cache views, blocked keys, threads",
          "[models][gemv]") {
  torch::manual_seed(5);
  const int threads = torch::get_num_threads();
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (const int use_threads : {1, 4}) {
      INFO(c10::toString(dtype) << " on " << use_threads << " threads");
      torch::set_num_threads(use_threads);
      // 3 rows, 6 query heads sharing 2 key/value heads, 37 keys of 20 values in a cache of 50.
      const auto q = torch::randn({3, 1, 6, 20}).to(dtype).transpose(1, 2);  // a permuted view, as in a block
      const auto k = torch::randn({3, 2, 50, 20}).to(dtype).narrow(2, 0, 37);
      const auto v = torch::randn({3, 2, 50, 20}).to(dtype).narrow(2, 0, 37);
      auto blocked = torch::zeros({3, 1, 1, 37}, torch::kBool);
      blocked.select(0, 0).narrow(-1, 0, 5).fill_(true);  // left padding
      blocked.select(0, 1).narrow(-1, 30, 7).fill_(true);
      blocked.select(0, 2).fill_(true);                    // a padding query: uniform over all keys
      REQUIRE(one_query_attention_applies(q, k, v, blocked));
      const auto got = attend_one_query(q, k, v, blocked, 0.25);
      torch::set_num_threads(threads);
      REQUIRE(got.sizes() == torch::IntArrayRef({3, 6, 1, 20}));
      REQUIRE(got.scalar_type() == dtype);
      const auto expected = attention_reference(q, k, v, blocked, 0.25);
      const double tolerance = dtype == torch::kFloat32 ? 1e-5 : 1.0 / 64;
      CHECK(torch::allclose(got.to(torch::kFloat64), expected, tolerance, tolerance));
    }
  }
}

TEST_CASE("one-query attention refuses what it cannot take, naming every shape", "[models][gemv]") {
  const auto q = torch::randn({1, 4, 1, 8}), k = torch::randn({1, 2, 5, 8});
  const auto blocked = torch::zeros({1, 1, 1, 5}, torch::kBool);
  CHECK(one_query_attention_applies(q, k, k, blocked));
  CHECK_FALSE(one_query_attention_applies(torch::randn({1, 4, 2, 8}), k, k, blocked));           // two queries
  CHECK_FALSE(one_query_attention_applies(torch::randn({1, 3, 1, 8}), k, k, blocked));           // 3 heads over 2
  CHECK_FALSE(one_query_attention_applies(q, k, k, torch::zeros({1, 1, 1, 4}, torch::kBool)));   // mask width
  CHECK_FALSE(one_query_attention_applies(q, k.to(torch::kBFloat16), k, blocked));               // mixed dtypes
  CHECK_FALSE(one_query_attention_applies(q, k.transpose(2, 3).contiguous().transpose(2, 3), k, blocked));
  try {
    attend_one_query(torch::randn({1, 4, 2, 8}), k, k, blocked, 1.0);
    FAIL("two queries were taken");
  } catch (const accel::UsageError& e) {
    const std::string message = e.what();
    CHECK(message.find("q [1, 4, 2, 8]") != std::string::npos);
    CHECK(message.find("blocked [1, 1, 1, 5]") != std::string::npos);
  }
}

TEST_CASE("rows_product: every kernel equals the float64 product, both layouts and dtypes, any size and rows",
          "[models][gemv][rows]") {
  torch::manual_seed(6);
  REQUIRE(std::string(rows_kernels().back().name) == "plain");
  for (const auto& kernel : rows_kernels()) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      for (const bool stored_in_out : {false, true}) {
        for (const auto in : {std::int64_t{1}, std::int64_t{7}, std::int64_t{16}, std::int64_t{33}, std::int64_t{200}}) {
          for (const auto out : {std::int64_t{1}, std::int64_t{5}, std::int64_t{27}, std::int64_t{50}}) {
            for (const auto rows : {std::int64_t{1}, std::int64_t{3}, std::int64_t{4}, std::int64_t{9}}) {
              INFO(kernel.name << " " << c10::toString(dtype) << (stored_in_out ? " [in, out]" : " [out, in]")
                               << " in=" << in << " out=" << out << " rows=" << rows);
              const auto weight = stored_in_out ? unaligned(in, out, dtype).t() : unaligned(out, in, dtype);
              const auto x = unaligned(rows, in, dtype);
              const auto bias = torch::randn({out}).to(dtype);
              REQUIRE(rows_product_applies(x, weight));
              const auto got = rows_product(x, weight, bias, kernel);
              REQUIRE(got.sizes() == torch::IntArrayRef({rows, out}));
              REQUIRE(got.scalar_type() == dtype);
              const double tolerance = dtype == torch::kFloat32 ? 1e-4 : 1.0 / 128;
              CHECK(torch::allclose(got.to(torch::kFloat64), reference(x, weight, bias).to(torch::kFloat64),
                                    tolerance, tolerance));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("rows_product: a row's result is bitwise the same alone, beside 1..63 rows, on 1 or 4 threads",
          "[models][gemv][rows]") {
  torch::manual_seed(7);
  const int threads = torch::get_num_threads();
  for (const auto& kernel : rows_kernels()) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      // Large enough that 4 threads split the columns; odd sizes leave tails everywhere.
      for (const bool stored_in_out : {false, true}) {
        INFO(kernel.name << " " << c10::toString(dtype) << (stored_in_out ? " [in, out]" : " [out, in]"));
        const auto weight = stored_in_out ? torch::randn({300, 1003}).to(dtype).t() : torch::randn({1003, 300}).to(dtype);
        const auto bias = torch::randn({1003}).to(dtype);
        const auto x = torch::randn({64, 300}).to(dtype);
        torch::set_num_threads(1);
        std::vector<torch::Tensor> alone;
        for (std::int64_t r = 0; r < 64; ++r) alone.push_back(rows_product(x.narrow(0, r, 1), weight, bias, kernel));
        for (const int use_threads : {1, 4}) {
          torch::set_num_threads(use_threads);
          for (const auto rows : {std::int64_t{2}, std::int64_t{5}, std::int64_t{8}, std::int64_t{13}, std::int64_t{64}}) {
            INFO(rows << " rows on " << use_threads << " threads");
            const auto first = 64 - rows;  // the last rows, so each sits at another index than alone
            const auto together = rows_product(x.narrow(0, first, rows), weight, bias, kernel);
            for (std::int64_t r = 0; r < rows; ++r) CHECK(torch::equal(together[r], alone[first + r][0]));
          }
        }
        torch::set_num_threads(threads);
      }
    }
  }
}

TEST_CASE("slot attention: each row over its own span of its slot equals one-query attention on those keys, bitwise",
          "[models][gemv][slots]") {
  torch::manual_seed(8);
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    INFO(c10::toString(dtype));
    // 3 slots of 10 keys, 2 key/value heads of 8 values, 4 query heads; rows in slots 2, 0 and 1.
    const auto keys = torch::randn({3, 2, 10, 8}).to(dtype), values = torch::randn({3, 2, 10, 8}).to(dtype);
    const auto q = torch::randn({3, 4, 8}).to(dtype);
    const SlotSpans spans{{2, 0, 1}, {0, 3, 9}, {7, 10, 10}};
    const auto got = attend_slots(q, keys, values, spans, 0.3);
    REQUIRE(got.sizes() == torch::IntArrayRef({3, 4, 8}));
    for (std::size_t r = 0; r < 3; ++r) {
      const auto count = spans.last[r] - spans.first[r];
      const auto k = keys[spans.slots[r]].narrow(1, spans.first[r], count).unsqueeze(0);
      const auto v = values[spans.slots[r]].narrow(1, spans.first[r], count).unsqueeze(0);
      const auto alone = attend_one_query(q[static_cast<std::int64_t>(r)].unsqueeze(0).unsqueeze(2), k, v,
                                          torch::zeros({1, 1, 1, count}, torch::kBool), 0.3);
      CHECK(torch::equal(got[static_cast<std::int64_t>(r)], alone[0].squeeze(1)));
    }
  }
  const auto cache = torch::zeros({2, 1, 4, 8});
  REQUIRE_THROWS_WITH(attend_slots(torch::zeros({1, 1, 8}), cache, cache, {{1}, {2}, {5}}, 1.0),
                      Catch::Matchers::Contains("row 0 spans keys [2, 5) of slot 1 in a cache of [2, 1, 4, 8]"));
  REQUIRE_THROWS_WITH(attend_slots(torch::zeros({1, 2, 7}), cache, cache, {{0}, {0}, {1}}, 1.0),
                      Catch::Matchers::Contains("got q [1, 2, 7], caches [2, 1, 4, 8] and 1 spans"));
}
