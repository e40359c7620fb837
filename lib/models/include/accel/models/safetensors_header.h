#pragma once
// The safetensors header without LibTorch: the 8-byte length, the JSON header and the layout of
// the data section, checked as the reference implementation (huggingface/safetensors) checks
// them. Kept torch-free so that the fuzzer and the tests can exercise every byte of it cheaply.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace accel::models {

// The dtypes this project reads and writes (the format's codes, e.g. "BF16").
enum class SafetensorsDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* safetensors_dtype_code(SafetensorsDType dtype);
std::size_t safetensors_dtype_bytes(SafetensorsDType dtype);
std::string accepted_safetensors_dtype_codes();  // "F64, F32, ..." for messages

// "[2, 3]" for messages; a shape of hostile length shows its first dimensions and its rank.
std::string safetensors_shape_text(const std::vector<std::int64_t>& shape);

struct SafetensorsEntry {
  std::string name;
  SafetensorsDType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets into the data section
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::uint64_t data_offset = 0;            // where the data section starts in the file
  std::vector<SafetensorsEntry> tensors;    // in the order of their bytes
  std::map<std::string, std::string> metadata;
};

// Parses the header of the `file_size` bytes at `file` (a whole safetensors file) and checks
// that every tensor's byte size (64-bit, overflow refused) matches its dtype and shape, and that
// the tensors tile the data section exactly: no overlap, no gap, no trailing bytes, nothing past
// the end. Throws FileError naming `path`, and the tensor where one is at fault.
SafetensorsHeader parse_safetensors_header(const unsigned char* file, std::uint64_t file_size,
                                           const std::string& path);

}  // namespace accel::models
