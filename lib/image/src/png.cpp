#include "accel/image/png.h"

#include <zlib.h>

#include <limits>

#include "accel/core/error.h"
#include "accel/core/files.h"

namespace accel::image {
namespace {

constexpr std::string_view kSignature{"\x89PNG\r\n\x1a\n", 8};

void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

// length, type, data, and the CRC-32 of type and data (PNG specification, section 5.3).
void put_chunk(std::string& out, std::string_view type, std::string_view data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  const auto crc_start = out.size();
  out.append(type);
  out.append(data);
  const auto* bytes = reinterpret_cast<const Bytef*>(out.data() + crc_start);
  put_u32(out, static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0), bytes, static_cast<uInt>(out.size() - crc_start))));
}

// Every row behind filter type 0 (None), then zlib-compressed: the image data stream.
std::string compressed_rows(const RgbPixels& pixels) {
  const std::size_t row_bytes = std::size_t{pixels.width} * 3;
  std::string rows;
  rows.reserve((row_bytes + 1) * pixels.height);
  for (std::uint32_t y = 0; y < pixels.height; ++y) {
    rows.push_back('\0');
    rows.append(reinterpret_cast<const char*>(pixels.data) + y * row_bytes, row_bytes);
  }
  uLongf size = compressBound(static_cast<uLong>(rows.size()));
  std::string out(size, '\0');
  const int status = compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                               reinterpret_cast<const Bytef*>(rows.data()), static_cast<uLong>(rows.size()), 9);
  if (status != Z_OK) throw Error("PNG encoding: zlib's compress2 failed with status " + std::to_string(status));
  out.resize(size);
  return out;
}

}  // namespace

std::string encode_png(const RgbPixels& pixels) {
  // PNG limits each dimension to 2^31 - 1; the row buffer must also fit zlib's 32-bit sizes.
  const auto limit = std::uint64_t{std::numeric_limits<uInt>::max()};
  if (pixels.width == 0 || pixels.height == 0 || pixels.data == nullptr ||
      (std::uint64_t{pixels.width} * 3 + 1) * pixels.height >= limit) {
    throw UsageError("PNG encoding: a picture of " + std::to_string(pixels.width) + "x" +
                     std::to_string(pixels.height) + " pixels cannot be written; expected 1 to 2^31 - 1 pixels a side "
                     "and under 4 GiB of pixels");
  }
  std::string header;
  put_u32(header, pixels.width);
  put_u32(header, pixels.height);
  header += std::string{8, 2, 0, 0, 0};  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  std::string out(kSignature);
  put_chunk(out, "IHDR", header);
  put_chunk(out, "IDAT", compressed_rows(pixels));
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, const RgbPixels& pixels) { files::replace_atomically(path, encode_png(pixels)); }

}  // namespace accel::image
