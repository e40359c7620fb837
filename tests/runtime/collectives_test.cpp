// Split / gather / broadcast / reduce semantics with ranks as threads over Gloo.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "accel/runtime/json_codec.h"
#include "thread_ranks.h"

using accel::PartialState;
using accel::testing::run_ranks;
using accel::testing::values_of;

namespace {

const int kWorlds[] = {1, 2, 3, 4, 7};

std::vector<std::string> numbered(std::size_t n) {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back("item " + std::to_string(i));
  return v;
}

std::vector<std::int64_t> as_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

}  // namespace

TEST_CASE("three prompts on two ranks split as accelerate does, with and without padding", "[runtime][split]") {
  const std::vector<std::string> prompts{"a dog", "a cat", "a chicken"};
  using Shares = std::pair<std::vector<std::string>, std::vector<std::string>>;
  const auto shares = values_of(run_ranks<Shares>(2, [&](const PartialState& s) {
    return Shares{s.split_between_processes(prompts).items, s.split_between_processes(prompts, true).items};
  }));
  CHECK(shares[0].first == std::vector<std::string>{"a dog", "a cat"});
  CHECK(shares[1].first == std::vector<std::string>{"a chicken"});
  CHECK(shares[0].second == std::vector<std::string>{"a dog", "a cat"});
  CHECK(shares[1].second == std::vector<std::string>{"a chicken", "a chicken"});
}

TEST_CASE("split then gather_unpadded returns exactly the input, for every size and world", "[runtime][split]") {
  for (int world : kWorlds) {
    for (std::size_t n : {0, 1, 2, 5, 17}) {
      for (bool pad : {false, true}) {
        INFO("world " << world << ", " << n << " items, padding " << pad);
        const auto input = numbered(n);
        struct Seen {
          std::size_t items, real;
          std::vector<std::string> gathered;
        };
        const auto seen = values_of(run_ranks<Seen>(world, [&](const PartialState& s) {
          const auto mine = s.split_between_processes(input, pad);
          std::vector<std::string> results;
          for (const auto& item : mine) results.push_back(item + "!");
          return Seen{mine.num_items, mine.num_real, s.gather_unpadded(results, mine)};
        }));
        std::vector<std::string> expected;
        for (const auto& item : input) expected.push_back(item + "!");
        std::size_t real = 0;
        for (int r = 0; r < world; ++r) {
          CHECK(seen[r].gathered == expected);
          real += seen[r].real;
          if (pad) CHECK(seen[r].items == seen[0].items);
          if (!pad) CHECK(seen[r].items == seen[r].real);  // no implicit padding when it is off
        }
        CHECK(real == n);
      }
    }
  }
}

TEST_CASE("more ranks than items: empty shares, or the last item when padded", "[runtime][split]") {
  const std::vector<std::string> input{"A"};
  using Shares = std::pair<std::vector<std::string>, std::vector<std::string>>;
  const auto shares = values_of(run_ranks<Shares>(4, [&](const PartialState& s) {
    return Shares{s.split_between_processes(input).items, s.split_between_processes(input, true).items};
  }));
  CHECK(shares[0].first == input);
  for (int r = 1; r < 4; ++r) {
    CHECK(shares[r].first.empty());
    CHECK(shares[r].second == input);
  }
}

TEST_CASE("tensors split along dim 0, padding repeats the last row, gather_unpadded restores them", "[runtime][split]") {
  for (int world : kWorlds) {
    INFO("world " << world);
    const auto input = torch::arange(10).reshape({5, 2});
    struct Seen {
      std::vector<std::int64_t> share;
      std::int64_t rows;
      std::vector<std::int64_t> gathered;
    };
    const auto seen = values_of(run_ranks<Seen>(world, [&](const PartialState& s) {
      const auto plain = s.split_between_processes(input);
      const auto padded = s.split_between_processes(input, true);
      return Seen{as_vector(plain.items), padded.items.size(0), as_vector(s.gather_unpadded(padded.items * 10, padded))};
    }));
    const auto expected = as_vector(input * 10);
    for (int r = 0; r < world; ++r) {
      CHECK(seen[r].gathered == expected);
      CHECK(seen[r].rows == (5 + world - 1) / world);
    }
    if (world == 2) CHECK(seen[1].share == std::vector<std::int64_t>{6, 7, 8, 9});
  }
  {
    // Two ranks, one row: rank 1's padded share is the input's last row.
    const auto row = torch::tensor({{7, 8}});
    const auto shares = values_of(run_ranks<std::vector<std::int64_t>>(
        2, [&](const PartialState& s) { return as_vector(s.split_between_processes(row, true).items); }));
    CHECK(shares[1] == std::vector<std::int64_t>{7, 8});
  }
}

TEST_CASE("maps split every value alike", "[runtime][split]") {
  const std::map<std::string, std::vector<int>> input{{"ids", {1, 2, 3}}, {"lengths", {10, 20, 30}}};
  const std::map<std::string, torch::Tensor> tensors{{"x", torch::arange(3)}, {"y", torch::arange(3) + 100}};
  using Seen = std::pair<std::map<std::string, std::vector<int>>, std::vector<std::int64_t>>;
  const auto seen = values_of(run_ranks<Seen>(2, [&](const PartialState& s) {
    const auto split_tensors = s.split_between_processes(tensors, true);
    return Seen{s.split_between_processes(input).items, as_vector(split_tensors.items.at("y"))};
  }));
  CHECK(seen[0].first == std::map<std::string, std::vector<int>>{{"ids", {1, 2}}, {"lengths", {10, 20}}});
  CHECK(seen[1].first == std::map<std::string, std::vector<int>>{{"ids", {3}}, {"lengths", {30}}});
  CHECK(seen[1].second == std::vector<std::int64_t>{102, 102});
}

TEST_CASE("gather_object flattens lists in rank order and keeps one value per rank", "[runtime][gather]") {
  for (int world : kWorlds) {
    INFO("world " << world);
    struct Seen {
      std::vector<std::string> lists;
      std::vector<int> ranks;
      std::vector<std::map<std::string, int>> maps;
      std::vector<nlohmann::json> json;
      std::vector<std::string> none;
    };
    const auto seen = values_of(run_ranks<Seen>(world, [&](const PartialState& s) {
      const int r = s.process_index();
      // rank r contributes r items: rank 0 an empty list
      std::vector<std::string> mine;
      for (int i = 0; i < r; ++i) mine.push_back(std::to_string(r) + "." + std::to_string(i));
      return Seen{s.gather_object(mine), s.gather_object(r), s.gather_object(std::map<std::string, int>{{"rank", r}}),
                  s.gather_object(nlohmann::json{{"rank", r}, {"even", r % 2 == 0}}),
                  s.gather_object(std::vector<std::string>{})};
    }));
    std::vector<std::string> lists;
    std::vector<int> ranks;
    for (int r = 0; r < world; ++r) {
      for (int i = 0; i < r; ++i) lists.push_back(std::to_string(r) + "." + std::to_string(i));
      ranks.push_back(r);
    }
    for (int r = 0; r < world; ++r) {
      CHECK(seen[r].lists == lists);
      CHECK(seen[r].ranks == ranks);
      CHECK(seen[r].maps.size() == static_cast<std::size_t>(world));
      CHECK(seen[r].maps.back().at("rank") == world - 1);
      CHECK(seen[r].json.at(world - 1)["even"] == ((world - 1) % 2 == 0));
      CHECK(seen[r].none.empty());
    }
  }
}

TEST_CASE("broadcast and broadcast_object copy one rank's value to all", "[runtime][broadcast]") {
  for (int world : kWorlds) {
    INFO("world " << world);
    using Seen = std::pair<std::string, std::vector<std::int64_t>>;
    const auto seen = values_of(run_ranks<Seen>(world, [&](const PartialState& s) {
      const int last = s.num_processes() - 1;
      // Only the source needs a tensor: the others learn its shape and dtype.
      const auto t = s.is_last_process() ? torch::arange(6).reshape({2, 3}) : torch::Tensor();
      return Seen{s.broadcast_object("from " + std::to_string(s.process_index()), last), as_vector(s.broadcast(t, last))};
    }));
    for (int r = 0; r < world; ++r) {
      CHECK(seen[r].first == "from " + std::to_string(world - 1));
      CHECK(seen[r].second == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
    }
  }
}

TEST_CASE("gather of uneven tensors, reduce and pad_across_processes", "[runtime][tensor]") {
  for (int world : kWorlds) {
    INFO("world " << world);
    struct Seen {
      std::vector<std::int64_t> gathered, padded;
      double sum, mean, max, min;
    };
    const auto seen = values_of(run_ranks<Seen>(world, [&](const PartialState& s) {
      const int r = s.process_index();
      const auto rows = torch::full({r, 2}, r, torch::kLong);  // rank 0 has no rows at all
      const auto v = torch::tensor({static_cast<double>(r + 1)});
      return Seen{as_vector(s.gather(rows)), as_vector(s.pad_across_processes(torch::ones({r + 1}), 0, -1, true)),
                  s.reduce(v, accel::ReduceOp::Sum).item<double>(), s.reduce(v).item<double>(),
                  s.reduce(v, accel::ReduceOp::Max).item<double>(), s.reduce(v, accel::ReduceOp::Min).item<double>()};
    }));
    std::vector<std::int64_t> gathered;
    for (int r = 0; r < world; ++r) gathered.insert(gathered.end(), 2 * r, r);
    for (int r = 0; r < world; ++r) {
      CHECK(seen[r].gathered == gathered);
      std::vector<std::int64_t> padded(world - r - 1, -1);
      padded.insert(padded.end(), r + 1, 1);
      CHECK(seen[r].padded == padded);
      CHECK(seen[r].sum == Approx(world * (world + 1) / 2.0));
      CHECK(seen[r].mean == Approx((world + 1) / 2.0));
      CHECK(seen[r].max == world);
      CHECK(seen[r].min == 1);
    }
  }
}

TEST_CASE("reduce: mean by default, none is the sum, scale applies after, integer means are floating", "[runtime][tensor]") {
  // Issue 11, point 5: accelerate.utils.reduce(tensor, reduction="mean", scale=1.0).
  for (int world : {1, 3}) {
    INFO("world " << world);
    struct Seen {
      double mean, none, scaled;
      c10::ScalarType int_mean_type;
      double int_mean;
    };
    const auto seen = values_of(run_ranks<Seen>(world, [&](const PartialState& s) {
      const auto v = torch::tensor({static_cast<double>(s.process_index() + 1)});
      const auto ints = torch::tensor({static_cast<std::int64_t>(2 * s.process_index() + 1)});
      const auto int_mean = s.reduce(ints);
      return Seen{s.reduce(v).item<double>(), s.reduce(v, accel::ReduceOp::None).item<double>(),
                  s.reduce(v, accel::ReduceOp::Sum, 0.5).item<double>(), int_mean.scalar_type(),
                  int_mean.item<double>()};
    }));
    for (const auto& r : seen) {
      CHECK(r.mean == Approx((world + 1) / 2.0));
      CHECK(r.none == Approx(world * (world + 1) / 2.0));
      CHECK(r.scaled == Approx(world * (world + 1) / 4.0));
      CHECK(r.int_mean_type == torch::kFloat);  // the same alone and distributed
      CHECK(r.int_mean == Approx(world));       // mean of 1, 3, 5, ...
    }
  }
}

TEST_CASE("padding repeats the input's last item on every rank: lists, tensors and maps", "[runtime][split]") {
  // Issue 11, point 4: 7 items on 3 ranks give [0,1,2] [3,4,6] [5,6,6], as accelerate's inputs[-1].
  const std::vector<int> items{0, 1, 2, 3, 4, 5, 6};
  const auto tensor = torch::arange(7);
  const std::map<std::string, std::vector<int>> map{{"a", items}, {"b", items}};
  struct Seen {
    std::vector<int> list;
    std::vector<std::int64_t> rows;
    std::vector<int> map_b;
  };
  const auto seen = values_of(run_ranks<Seen>(3, [&](const PartialState& s) {
    return Seen{s.split_between_processes(items, true).items, as_vector(s.split_between_processes(tensor, true).items),
                s.split_between_processes(map, true).items.at("b")};
  }));
  const std::vector<std::vector<int>> expected{{0, 1, 2}, {3, 4, 6}, {5, 6, 6}};
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    CHECK(seen[r].list == expected[r]);
    CHECK(seen[r].rows == std::vector<std::int64_t>(expected[r].begin(), expected[r].end()));
    CHECK(seen[r].map_b == expected[r]);
  }
  const auto empty = values_of(run_ranks<std::size_t>(2, [&](const PartialState& s) {
    return s.split_between_processes(std::vector<int>{}, true).items.size();
  }));
  CHECK(empty == std::vector<std::size_t>{0, 0});  // accelerate raises here; an empty input stays empty
}

namespace {

struct Point {
  double x = 0;
  std::string label;
  bool operator==(const Point& other) const { return x == other.x && label == other.label; }
};

std::ostream& operator<<(std::ostream& out, const Point& p) { return out << p.label << "@" << p.x; }

}  // namespace

// The codec hook: a user's own type travels through gather_object.
template <>
struct accel::Codec<Point> {
  static void write(ByteWriter& w, const Point& p) {
    Codec<double>::write(w, p.x);
    Codec<std::string>::write(w, p.label);
  }
  static Point read(ByteReader& r) {
    const double x = Codec<double>::read(r);
    return {x, Codec<std::string>::read(r)};
  }
};

TEST_CASE("nested vectors and maps of tensors go through gather, broadcast, reduce and pad", "[runtime][tensor]") {
  // Issue 11, point 7: accelerate's operations take nested lists and dicts of tensors.
  using Nested = std::map<std::string, std::vector<torch::Tensor>>;
  struct Seen {
    std::vector<std::int64_t> gathered_a1, broadcast_b0, padded_b0;
    double reduced_a0;
  };
  const auto seen = values_of(run_ranks<Seen>(3, [](const PartialState& s) {
    const auto r = s.process_index();
    const Nested mine{{"a", {torch::full({1}, r), torch::full({r + 1}, 10 * r)}}, {"b", {torch::full({r + 1}, r)}}};
    const auto gathered = s.gather(mine);
    const auto broadcast = s.broadcast(mine, 2);
    const auto reduced = s.reduce(mine.at("a").front().to(torch::kDouble).reshape({1, 1}), accel::ReduceOp::Sum);
    const auto padded = s.pad_across_processes(mine, 0, -1);
    return Seen{as_vector(gathered.at("a")[1]), as_vector(broadcast.at("b")[0]), as_vector(padded.at("b")[0]),
                reduced.item<double>()};
  }));
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    CHECK(seen[r].gathered_a1 == std::vector<std::int64_t>{0, 10, 10, 20, 20, 20});
    CHECK(seen[r].broadcast_b0 == std::vector<std::int64_t>{2, 2, 2});
    std::vector<std::int64_t> padded(r + 1, r);
    padded.resize(3, -1);
    CHECK(seen[r].padded_b0 == padded);
    CHECK(seen[r].reduced_a0 == 3);
  }
  const auto mismatch = run_ranks<int>(2, [](const PartialState& s) {
    std::vector<torch::Tensor> mine(s.process_index() + 1, torch::ones({1}));
    s.gather(mine);
    return 0;
  });
  for (const auto& o : mismatch) {
    CHECK(o.error == "gather: rank 1 passed nested data shaped [T,T] but rank 0 passed [T]; every rank must pass "
                     "the same structure");
  }
}

TEST_CASE("gather_object carries tensors and users' own types, gather_for_metrics drops padding", "[runtime][tensor]") {
  struct Seen {
    std::vector<Point> points;
    std::vector<std::int64_t> tensors;
    std::vector<std::string> metrics;
  };
  const auto seen = values_of(run_ranks<Seen>(3, [](const PartialState& s) {
    const auto r = s.process_index();
    const auto tensors = s.gather_object(torch::full({2}, r, torch::kLong));
    std::vector<std::int64_t> flat;
    for (const auto& t : tensors) {
      const auto more = as_vector(t);
      flat.insert(flat.end(), more.begin(), more.end());
    }
    const auto split = s.split_between_processes(std::vector<std::string>{"a", "b", "c", "d"}, true);
    return Seen{s.gather_object(Point{r * 1.5, "p" + std::to_string(r)}), flat, s.gather_for_metrics(split.items, split)};
  }));
  CHECK(seen[1].points == std::vector<Point>{{0, "p0"}, {1.5, "p1"}, {3, "p2"}});
  CHECK(seen[2].tensors == std::vector<std::int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(seen[0].metrics == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("send_to_device, concatenate and find_batch_size work on nested data", "[runtime][tensor]") {
  using Batch = std::map<std::string, std::vector<torch::Tensor>>;
  const Batch batch{{"ids", {torch::ones({4, 2})}}, {"mask", {torch::zeros({4, 2})}}};
  CHECK(accel::find_batch_size(batch) == 4);
  CHECK(accel::send_to_device(batch, c10::Device(c10::kCPU)).at("ids")[0].device().is_cpu());
  const auto joined = accel::concatenate(std::vector<Batch>{batch, batch});
  CHECK(joined.at("mask")[0].size(0) == 8);
  CHECK_THROWS_WITH(accel::find_batch_size(std::vector<torch::Tensor>{}),
                    "find_batch_size: the data holds no tensor with a batch dimension (dim 0)");
  CHECK_THROWS_WITH(accel::concatenate(std::vector<std::vector<torch::Tensor>>{{torch::ones({1})}, {}}),
                    "concatenate: the parts hold 0 and 1 elements; every part must have the same structure");
}
