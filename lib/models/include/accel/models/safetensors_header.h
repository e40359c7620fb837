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

// Every dtype the format defines (huggingface/safetensors' Dtype, codes such as "BF16"). A file
// may hold any of them; which ones can be read into tensors is the reader's business
// (safetensors.h), so a tensor of a dtype no model here uses does not make the file unreadable.
enum class SafetensorsDType {
  BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0,
  I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64,
};

const char* safetensors_dtype_code(SafetensorsDType dtype);
std::size_t safetensors_dtype_bits(SafetensorsDType dtype);  // F4: 4, F6_*: 6, BF16: 16, ...

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
// that every tensor's byte size (64-bit, overflow refused; sub-byte dtypes must fill whole
// bytes) matches its dtype and shape, and that
// the tensors tile the data section exactly: no overlap, no gap, no trailing bytes, nothing past
// the end. Throws FileError naming `path`, and the tensor where one is at fault.
SafetensorsHeader parse_safetensors_header(const unsigned char* file, std::uint64_t file_size,
                                           const std::string& path);

}  // namespace accel::models
