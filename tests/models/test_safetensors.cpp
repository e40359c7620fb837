#include "accel/core/error.h"
#include "accel/models/safetensors.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <string>

using namespace accel::models;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

// Writes an 8-byte length, `header` and `data` verbatim: for files the writer would never make.
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               std::uint64_t declared_length) {
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(declared_length >> (8 * i)));
  out << header << data;
}

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  write_raw(path, header, data, header.size());
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, values and metadata",
          "[models][safetensors]") {
  TempDir dir;
  const auto path = dir.path("t.safetensors");
  torch::manual_seed(1);
  NamedTensors tensors = {
      {"a.weight", torch::randn({3, 5})},
      {"b", torch::randn({4}).to(torch::kBFloat16)},
      {"c", torch::randn({2, 2}).to(torch::kFloat16)},
      {"ids", torch::arange(6, torch::kLong).view({2, 3})},
      {"flags", torch::tensor({true, false})},
      {"scalar", torch::tensor(2.5)},
      {"strided", torch::randn({4, 6}).t()},
  };
  save_safetensors(path, tensors, {.overwrite = false, .metadata = {{"format", "pt"}}});

  SafetensorsFile file(path);
  CHECK(file.names().size() == tensors.size());
  CHECK(file.metadata().at("format") == "pt");
  for (const auto& [name, tensor] : tensors) {
    const auto loaded = file.get(name);
    CHECK(loaded.scalar_type() == tensor.scalar_type());
    CHECK(loaded.sizes() == tensor.sizes());
    CHECK(torch::equal(loaded, tensor));
  }
  CHECK(torch::equal(file.get_floating("b", {4}, torch::kFloat32), tensors[1].second.to(torch::kFloat32)));
}

TEST_CASE("safetensors writer refuses to overwrite and leaves no temporary file",
          "[models][safetensors]") {
  TempDir dir;
  const auto path = dir.path("t.safetensors");
  save_safetensors(path, {{"x", torch::ones({2})}});
  REQUIRE_THROWS_WITH(save_safetensors(path, {{"x", torch::zeros({2})}}),
                      Contains(path) && Contains("already exists; refusing to overwrite"));
  CHECK(torch::equal(SafetensorsFile(path).get("x"), torch::ones({2})));
  save_safetensors(path, {{"x", torch::zeros({2})}}, {.overwrite = true, .metadata = {}});
  CHECK(torch::equal(SafetensorsFile(path).get("x"), torch::zeros({2})));
  CHECK(std::distance(std::filesystem::directory_iterator(dir.root()),
                      std::filesystem::directory_iterator()) == 1);
  REQUIRE_THROWS_WITH(save_safetensors(dir.path("d.safetensors"), {{"x", torch::ones(1)}, {"x", torch::ones(1)}}),
                      Contains("'x'") && Contains("must be unique"));
  CHECK_FALSE(std::filesystem::exists(dir.path("d.safetensors")));
}

TEST_CASE("safetensors reader loads a subset without touching other tensors' bytes",
          "[models][safetensors]") {
  TempDir dir;
  const auto path = dir.path("t.safetensors");
  save_safetensors(path, {{"keep", torch::full({4}, 7.0)}, {"other", torch::full({1000}, 1.0)}});
  // Overwrite the bytes of "other" with garbage: loading "keep" must not notice.
  const auto& info = SafetensorsFile(path).info("other");
  const auto data_start = std::filesystem::file_size(path) - info.end;
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(data_start + info.begin));
    for (int i = 0; i < 4000; ++i) f.put('\xff');
  }
  SafetensorsFile file(path);
  CHECK(torch::equal(file.get("keep"), torch::full({4}, 7.0)));
}

TEST_CASE("safetensors errors name the file and the tensor", "[models][safetensors][errors]") {
  TempDir dir;
  const auto path = dir.path("bad.safetensors");
  const std::string entry = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

  SECTION("missing file") {
    REQUIRE_THROWS_AS(SafetensorsFile(dir.path("none.safetensors")), accel::FileError);
    REQUIRE_THROWS_WITH(SafetensorsFile(dir.path("none.safetensors")),
                        Contains("none.safetensors") && Contains("cannot open"));
  }
  SECTION("missing tensor") {
    save_safetensors(path, {{"w", torch::ones({2, 2})}});
    REQUIRE_THROWS_WITH(SafetensorsFile(path).get("h.0.missing"),
                        Contains(path) && Contains("missing tensor 'h.0.missing'"));
  }
  SECTION("wrong shape") {
    save_safetensors(path, {{"w", torch::ones({2, 2})}});
    REQUIRE_THROWS_WITH(SafetensorsFile(path).get_floating("w", {2, 3}, torch::kFloat32),
                        Contains(path) && Contains("'w' has shape [2, 2]") &&
                            Contains("expects [2, 3]"));
  }
  SECTION("wrong dtype") {
    save_safetensors(path, {{"w", torch::ones({2, 2}, torch::kInt32)}});
    REQUIRE_THROWS_WITH(SafetensorsFile(path).get_floating("w", {2, 2}, torch::kFloat32),
                        Contains(path) && Contains("'w' has dtype I32") &&
                            Contains("expected a floating dtype"));
  }
  SECTION("truncated file: data shorter than the header says") {
    write_raw(path, entry, std::string(10, '\0'));
    REQUIRE_THROWS_WITH(SafetensorsFile(path),
                        Contains(path) && Contains("truncated") && Contains("tensor 'w' ends at byte 16") &&
                            Contains("has 10"));
  }
  SECTION("truncated file: header shorter than declared") {
    write_raw(path, entry, "", entry.size() + 100);
    REQUIRE_THROWS_WITH(SafetensorsFile(path), Contains(path) && Contains("truncated"));
  }
  SECTION("truncated file: no length prefix") {
    std::ofstream(path) << "abc";
    REQUIRE_THROWS_WITH(SafetensorsFile(path), Contains(path) && Contains("truncated") &&
                                                   Contains("3 bytes"));
  }
  SECTION("bad header: not JSON") {
    write_raw(path, "{not json", "");
    REQUIRE_THROWS_WITH(SafetensorsFile(path), Contains(path) && Contains("bad safetensors header") &&
                                                   Contains("not valid JSON"));
  }
  SECTION("bad header: absurd length") {
    write_raw(path, entry, std::string(16, '\0'), 1ull << 40);
    REQUIRE_THROWS_WITH(SafetensorsFile(path), Contains("bad safetensors header") &&
                                                   Contains("100 MiB"));
  }
  SECTION("bad header: unknown dtype") {
    write_raw(path, R"({"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x");
    REQUIRE_THROWS_WITH(SafetensorsFile(path), Contains("tensor 'w'") && Contains("unknown dtype 'F8'") &&
                                                   Contains("the safetensors format defines BOOL, F4"));
  }
  SECTION("bad header: offsets disagree with shape") {
    write_raw(path, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})",
              std::string(16, '\0'));
    REQUIRE_THROWS_WITH(SafetensorsFile(path), Contains("tensor 'w'") && Contains("span 12 bytes") &&
                                                   Contains("need 16"));
  }
  SECTION("bad header: entry missing fields") {
    write_raw(path, R"({"w":{"dtype":"F32"}})", "");
    REQUIRE_THROWS_WITH(SafetensorsFile(path),
                        Contains("tensor 'w'") && Contains("dtype, shape and data_offsets"));
  }
}

namespace {

std::string tensor_entry(const std::string& name, const std::string& dtype, const std::string& shape,
                         std::uint64_t begin, std::uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

}  // namespace

TEST_CASE("safetensors refuses layouts the reference implementation refuses",
          "[models][safetensors][errors]") {
  TempDir dir;
  const auto path = dir.path("bad.safetensors");
  const auto refused = [&](const std::string& header, std::size_t data_bytes) {
    write_raw(path, header, std::string(data_bytes, '\0'));
    try {
      SafetensorsFile file(path);
    } catch (const accel::FileError& e) {
      return std::string(e.what());
    }
    FAIL("the file was accepted: " << header);
    return std::string();
  };

  SECTION("overlapping data_offsets would give two tensors the same bytes") {
    const auto message = refused("{" + tensor_entry("a", "F32", "[2]", 0, 8) + "," +
                                     tensor_entry("b", "F32", "[2]", 4, 12) + "}", 12);
    CHECK_THAT(message, Contains(path) && Contains("tensor 'b'") && Contains("bytes 4..12 overlap tensor 'a'"));
  }
  SECTION("a gap between tensors") {
    const auto message = refused("{" + tensor_entry("a", "F32", "[1]", 0, 4) + "," +
                                     tensor_entry("b", "F32", "[1]", 8, 12) + "}", 12);
    CHECK_THAT(message, Contains(path) && Contains("tensor 'b'") && Contains("gap: bytes 4..8 belong to no tensor"));
  }
  SECTION("a gap before the first tensor") {
    const auto message = refused("{" + tensor_entry("a", "F32", "[1]", 4, 8) + "}", 8);
    CHECK_THAT(message, Contains("tensor 'a'") && Contains("gap: bytes 0..4"));
  }
  SECTION("trailing bytes after the last tensor") {
    const auto message = refused("{" + tensor_entry("a", "F32", "[1]", 0, 4) + "}", 6);
    CHECK_THAT(message, Contains(path) && Contains("2 trailing bytes after the last tensor"));
  }
  SECTION("a shape whose byte size overflows 64 bits") {
    // 2^62 elements of 4 bytes wrap to 0 in 64-bit arithmetic, which would match offsets [0,0].
    const auto message = refused("{" + tensor_entry("w", "F32", "[4611686018427387904]", 0, 0) + "}", 0);
    CHECK_THAT(message, Contains("tensor 'w'") && Contains("[4611686018427387904]") &&
                            Contains("needs more than 2^64 bits"));
  }
  SECTION("sub-byte elements that do not fill whole bytes") {
    // Three 4-bit F4 elements are 12 bits; the reference refuses them as a misaligned slice.
    const auto message = refused("{" + tensor_entry("w", "F4", "[3]", 0, 2) + "}", 2);
    CHECK_THAT(message, Contains("tensor 'w'") && Contains("shape [3] of dtype F4 is 12 bits") &&
                            Contains("do not fill whole bytes"));
  }
  SECTION("a dimension beyond int64") {
    const auto message = refused("{" + tensor_entry("w", "U8", "[9223372036854775808]", 0, 0) + "}", 0);
    CHECK_THAT(message, Contains("tensor 'w'") && Contains("integers from 0 to 2^63-1"));
  }
  SECTION("a tensor named twice") {
    const auto message = refused("{" + tensor_entry("a", "F32", "[1]", 0, 4) + "," +
                                     tensor_entry("a", "F32", "[1]", 4, 8) + "}", 8);
    CHECK_THAT(message, Contains(path) && Contains("'a' appears twice"));
  }
  SECTION("a dtype nested 100 000 levels deep") {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const auto message = refused("{\"w\":{\"dtype\":" + deep + ",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
    CHECK_THAT(message, Contains(path) && Contains("nested deeper than 256 levels"));
  }
  SECTION("a dtype of the wrong type is quoted, cut short") {
    const std::string long_list = "[\"" + std::string(5000, 'x') + "\"]";
    const auto message = refused("{\"w\":{\"dtype\":" + long_list + ",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
    CHECK_THAT(message, Contains("unknown dtype '[\"xxx") && Contains("(5004 bytes in all)"));
    CHECK(message.size() < 400);
  }
  SECTION("the parser's message about a hostile token is cut short") {
    const auto message = refused("{\"w\":" + std::string(5000, '1') + "x}", 0);
    CHECK_THAT(message, Contains("not valid JSON") && Contains("bytes in all)"));
    CHECK(message.size() < 500);
  }
  SECTION("a hostile tensor name is cut short in the message") {
    const std::string name(100000, 'n');
    const auto message = refused("{" + tensor_entry(name, "F32", "[1]", 0, 3) + "}", 3);
    CHECK_THAT(message, Contains("(100000 bytes in all)") && Contains("span 3 bytes"));
    CHECK(message.size() < 500);
  }
}

TEST_CASE("safetensors accepts empty tensors and a file with no tensors", "[models][safetensors]") {
  TempDir dir;
  const auto path = dir.path("t.safetensors");
  save_safetensors(path, {{"empty", torch::ones({0, 3})}, {"x", torch::ones({2})}});
  SafetensorsFile file(path);
  CHECK(file.get("empty").sizes() == torch::IntArrayRef({0, 3}));
  CHECK(torch::equal(file.get("x"), torch::ones({2})));
  save_safetensors(path, {}, {.overwrite = true, .metadata = {{"k", "v"}}});
  CHECK(SafetensorsFile(path).names().empty());
}

TEST_CASE("safetensors reads a file whose other tensors have dtypes LibTorch lacks",
          "[models][safetensors]") {
  // Every dtype code of the format (huggingface/safetensors' Dtype) with its element size:
  // quantized checkpoints keep F8 scales, U8/I8 codes or I64 indexes beside the float weights.
  const std::pair<const char*, int> stored[] = {
      {"BOOL", 8}, {"F4", 4},   {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8},
      {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16}, {"BF16", 16}, {"I32", 32},
      {"U32", 32}, {"F32", 32}, {"C64", 64}, {"F64", 64}, {"I64", 64}, {"U64", 64},
  };
  TempDir dir;
  const auto path = dir.path("mixed.safetensors");
  // "w" first: four F32 ones; then one tensor of each dtype, 8 elements each (whole bytes for F4/F6).
  std::string header = "{" + tensor_entry("w", "F32", "[4]", 0, 16);
  std::string data;
  for (int i = 0; i < 4; ++i) data += std::string("\x00\x00\x80\x3f", 4);
  for (const auto& [code, bits] : stored) {
    const auto bytes = static_cast<std::size_t>(bits);  // 8 elements of `bits` bits
    header += "," + tensor_entry(std::string("extra.") + code, code, "[8]", data.size(), data.size() + bytes);
    data += std::string(bytes, '\x01');
  }
  write_raw(path, header + "}", data);

  SafetensorsFile file(path);
  CHECK(file.names().size() == 1 + std::size(stored));
  CHECK(torch::equal(file.get_floating("w", {4}, torch::kFloat32), torch::ones({4})));
  CHECK(file.info("extra.F8_E4M3").dtype == SafetensorsDType::F8_E4M3);
  CHECK(file.info("extra.F4").end - file.info("extra.F4").begin == 4);
  // Those LibTorch has are read as stored; the rest fail on request, naming tensor and dtype.
  CHECK(torch::equal(file.get("extra.I8"), torch::ones({8}, torch::kInt8)));
  CHECK(torch::equal(file.get("extra.U8"), torch::ones({8}, torch::kUInt8)));
  CHECK(torch::equal(file.get("extra.BOOL"), torch::ones({8}, torch::kBool)));
  CHECK(file.get("extra.I64").scalar_type() == torch::kInt64);
  CHECK(file.get("extra.F64").scalar_type() == torch::kFloat64);
  CHECK(file.get("extra.C64").scalar_type() == torch::kComplexFloat);
  for (const char* code : {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "U16", "U32", "U64"}) {
    const auto name = std::string("extra.") + code;
    REQUIRE_THROWS_WITH(file.get(name), Contains(path) && Contains("tensor '" + name + "' has dtype " + code) &&
                                            Contains("readable dtypes: F64, F32, F16, BF16"));
  }
  REQUIRE_THROWS_WITH(file.get_floating("extra.F8_E4M3", {8}, torch::kFloat32),
                      Contains("'extra.F8_E4M3' has dtype F8_E4M3; expected a floating dtype"));
  REQUIRE_THROWS_WITH(file.get_floating("extra.I8", {8}, torch::kFloat32),
                      Contains("'extra.I8' has dtype I8; expected a floating dtype"));
}
