#pragma once
// PNG files from 8-bit RGB pixels (no torch): what the image examples write.
#include <cstdint>
#include <string>
#include <string_view>

namespace accel::image {

// Interleaved 8-bit RGB, `height` rows of `width * 3` bytes, top row first.
struct RgbPixels {
  const std::uint8_t* data = nullptr;
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};

// A complete PNG file (8-bit truecolour, not interlaced). The same pixels always give the same
// bytes. Throws accel::UsageError for an empty picture or one larger than PNG allows.
std::string encode_png(const RgbPixels& pixels);

// Writes encode_png(pixels) to `path` under a temporary name first and renames it into place,
// so that `path` never holds half a picture. Throws accel::FileError naming the path.
void write_png(const std::string& path, const RgbPixels& pixels);

}  // namespace accel::image
