// PNG files as libpng (an independent decoder) reads them back.
#include "accel/image/png.h"

#include <png.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <vector>

#include "accel/core/error.h"
#include "support/temp_dir.h"

using accel::image::encode_png;
using accel::image::RgbPixels;
using Catch::Matchers::Contains;

namespace {

struct Decoded {
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
};

Decoded decode_with_libpng(const std::string& file) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_memory(&image, file.data(), file.size()) != 0);
  image.format = PNG_FORMAT_RGB;
  Decoded out{image.width, image.height, std::vector<std::uint8_t>(PNG_IMAGE_SIZE(image))};
  REQUIRE(png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr) != 0);
  return out;
}

std::vector<std::uint8_t> gradient(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> rgb;
  for (std::uint32_t y = 0; y < height; ++y)
    for (std::uint32_t x = 0; x < width; ++x)
      rgb.insert(rgb.end(), {static_cast<std::uint8_t>(x * 7), static_cast<std::uint8_t>(y * 13),
                             static_cast<std::uint8_t>((x * y) ^ 0x5a)});
  return rgb;
}

}  // namespace

TEST_CASE("encode_png writes pictures libpng reads back pixel for pixel", "[image][png]") {
  for (auto [width, height] : {std::pair<std::uint32_t, std::uint32_t>{1, 1}, {64, 64}, {5, 3}, {300, 2}}) {
    INFO(width << "x" << height);
    const auto rgb = gradient(width, height);
    const auto file = encode_png({rgb.data(), width, height});
    CHECK(file.substr(1, 3) == "PNG");
    const auto decoded = decode_with_libpng(file);
    CHECK(decoded.width == width);
    CHECK(decoded.height == height);
    CHECK(decoded.rgb == rgb);
    CHECK(encode_png({rgb.data(), width, height}) == file);  // the same pixels, the same bytes
  }
}

TEST_CASE("encode_png refuses an empty picture, naming its size", "[image][png]") {
  const std::vector<std::uint8_t> rgb(3);
  CHECK_THROWS_WITH(encode_png({rgb.data(), 0, 4}), Contains("0x4 pixels cannot be written"));
  CHECK_THROWS_AS(encode_png({nullptr, 1, 1}), accel::UsageError);
}

TEST_CASE("write_png replaces a file whole and leaves no temporary behind", "[image][png]") {
  accel::test::TempDir dir("png");
  const auto path = dir.write("picture.png", "an earlier file");
  const auto rgb = gradient(8, 4);
  accel::image::write_png(path, {rgb.data(), 8, 4});
  CHECK(decode_with_libpng(accel::test::slurp(path)).rgb == rgb);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.root()), std::filesystem::directory_iterator()) == 1);
  CHECK_THROWS_WITH(accel::image::write_png(dir.path("missing/picture.png"), {rgb.data(), 8, 4}),
                    Contains(dir.path("missing/picture.png")));
}
