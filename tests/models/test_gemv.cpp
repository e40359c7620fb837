// The one-row matrix-vector kernels (lib/models/src/gemv.h), each variant this CPU runs called
// directly, against the same product in float64.
#include "accel/core/error.h"
#include "gemv.h"

#include <catch2/catch.hpp>

#include <string>

using accel::models::detail::gemv;
using accel::models::detail::gemv_applies;
using accel::models::detail::gemv_kernels;

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

TEST_CASE("gemv: refuses what it cannot take, naming shapes, dtype and strides", "[models][gemv]") {
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
}
