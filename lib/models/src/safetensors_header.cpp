#include "accel/models/safetensors_header.h"

#include "accel/core/error.h"
#include "accel/core/text.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <limits>
#include <set>

namespace accel::models {
namespace {

using Json = nlohmann::json;

struct DTypeCode {
  SafetensorsDType dtype;
  const char* code;
  std::size_t bits;
};

constexpr DTypeCode kDTypes[] = {
    {SafetensorsDType::BOOL, "BOOL", 8},       {SafetensorsDType::F4, "F4", 4},
    {SafetensorsDType::F6_E2M3, "F6_E2M3", 6}, {SafetensorsDType::F6_E3M2, "F6_E3M2", 6},
    {SafetensorsDType::U8, "U8", 8},           {SafetensorsDType::I8, "I8", 8},
    {SafetensorsDType::F8_E5M2, "F8_E5M2", 8}, {SafetensorsDType::F8_E4M3, "F8_E4M3", 8},
    {SafetensorsDType::F8_E8M0, "F8_E8M0", 8}, {SafetensorsDType::I16, "I16", 16},
    {SafetensorsDType::U16, "U16", 16},        {SafetensorsDType::F16, "F16", 16},
    {SafetensorsDType::BF16, "BF16", 16},      {SafetensorsDType::I32, "I32", 32},
    {SafetensorsDType::U32, "U32", 32},        {SafetensorsDType::F32, "F32", 32},
    {SafetensorsDType::C64, "C64", 64},        {SafetensorsDType::F64, "F64", 64},
    {SafetensorsDType::I64, "I64", 64},        {SafetensorsDType::U64, "U64", 64},
};

const DTypeCode& entry_for(SafetensorsDType dtype) {
  return *std::find_if(std::begin(kDTypes), std::end(kDTypes),
                       [&](const DTypeCode& d) { return d.dtype == dtype; });
}

std::string format_dtype_codes() {
  std::vector<std::string> codes;
  for (const auto& d : kDTypes) codes.push_back(d.code);
  return text::join(codes, ", ");
}

// The reference implementation's cap on the JSON header, so that a corrupt length cannot make
// us parse gigabytes.
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;
constexpr std::size_t kLengthBytes = 8;

constexpr std::size_t kShownDimensions = 8;

std::string tensor_fault(const std::string& name) {
  return "bad safetensors header for tensor " + text::quote(name) + ": ";
}

std::uint64_t read_header_length(const unsigned char* file, std::uint64_t file_size,
                                 const std::string& path) {
  if (file_size < kLengthBytes)
    throw FileError(path, "truncated safetensors file: " + std::to_string(file_size) +
                              " bytes, fewer than the 8-byte header length");
  std::uint64_t length = 0;
  for (int i = kLengthBytes - 1; i >= 0; --i) length = (length << 8) | file[i];
  if (length > kMaxHeaderBytes)
    throw FileError(path, "bad safetensors header: declared header length " + std::to_string(length) +
                              " exceeds the 100 MiB limit");
  if (length > file_size - kLengthBytes)
    throw FileError(path, "truncated safetensors file: header declares " + std::to_string(length) +
                              " bytes but the file has " + std::to_string(file_size - kLengthBytes) +
                              " after the length");
  return length;
}

// The header as JSON. Nesting is bounded before parsing (recursive code such as dump() must
// never meet 100 000 levels) and a tensor named twice is refused: the parser would otherwise
// keep one of the two silently.
Json parse_json(const char* begin, const char* end, const std::string& path) {
  if (const auto problem = text::json_nesting_problem(std::string_view(begin, end - begin)))
    throw FileError(path, "bad safetensors header: " + *problem);
  std::set<std::string> names;
  const auto refuse_duplicates = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second)
      throw FileError(path, "bad safetensors header: " + text::quote(parsed.get<std::string>()) +
                                " appears twice");
    return true;
  };
  Json header;
  try {
    header = Json::parse(begin, end, refuse_duplicates);
  } catch (const Json::exception& e) {
    throw FileError(path, "bad safetensors header: not valid JSON (" + text::excerpt(e.what()) + ")");
  }
  if (!header.is_object()) throw FileError(path, "bad safetensors header: not a JSON object");
  return header;
}

std::map<std::string, std::string> read_metadata(const Json& entry, const std::string& path) {
  if (!entry.is_object()) throw FileError(path, "bad safetensors header: __metadata__ is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : entry.items()) {
    if (!value.is_string())
      throw FileError(path, "bad safetensors header: __metadata__ value " + text::quote(key) +
                                " is not a string");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

SafetensorsDType read_dtype(const Json& dtype, const std::string& name, const std::string& path) {
  const auto code = std::find_if(std::begin(kDTypes), std::end(kDTypes), [&](const DTypeCode& d) {
    return dtype.is_string() && dtype.get<std::string>() == d.code;
  });
  if (code == std::end(kDTypes))
    throw FileError(path, tensor_fault(name) + "unknown dtype " +
                              text::quote(dtype.is_string() ? dtype.get<std::string>() : dtype.dump()) +
                              "; the safetensors format defines " + format_dtype_codes());
  return code->dtype;
}

// The byte size that dtype and shape call for; refuses a product that 64 bits cannot hold and
// sub-byte elements (F4, F6) that do not end on a byte boundary, as the reference does.
std::uint64_t byte_size(const SafetensorsEntry& tensor, const std::string& path) {
  std::uint64_t bits = safetensors_dtype_bits(tensor.dtype);
  for (const std::int64_t d : tensor.shape)
    if (__builtin_mul_overflow(bits, static_cast<std::uint64_t>(d), &bits))
      throw FileError(path, tensor_fault(tensor.name) + "shape " + safetensors_shape_text(tensor.shape) +
                                " of dtype " + safetensors_dtype_code(tensor.dtype) +
                                " needs more than 2^64 bits");
  if (bits % 8 != 0)
    throw FileError(path, tensor_fault(tensor.name) + "shape " + safetensors_shape_text(tensor.shape) +
                              " of dtype " + safetensors_dtype_code(tensor.dtype) + " is " + std::to_string(bits) +
                              " bits, which do not fill whole bytes");
  return bits / 8;
}

SafetensorsEntry read_entry(const std::string& name, const Json& entry, const std::string& path) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets"))
    throw FileError(path, tensor_fault(name) + "expected an object with dtype, shape and data_offsets");
  SafetensorsEntry tensor{name, read_dtype(entry["dtype"], name, path), {}, 0, 0};
  const auto is_dimension = [](const Json& d) {
    return d.is_number_unsigned() && d.get<std::uint64_t>() <= std::numeric_limits<std::int64_t>::max();
  };
  const auto& shape = entry["shape"];
  if (!shape.is_array() || !std::all_of(shape.begin(), shape.end(), is_dimension))
    throw FileError(path, tensor_fault(name) + "shape must be a list of integers from 0 to 2^63-1");
  for (const auto& d : shape) tensor.shape.push_back(d.get<std::int64_t>());
  const auto& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw FileError(path, tensor_fault(name) + "data_offsets must be two non-negative integers");
  tensor.begin = offsets[0].get<std::uint64_t>();
  tensor.end = offsets[1].get<std::uint64_t>();
  if (tensor.end < tensor.begin) throw FileError(path, tensor_fault(name) + "data_offsets end before they begin");
  const std::uint64_t expected = byte_size(tensor, path);
  if (tensor.end - tensor.begin != expected)
    throw FileError(path, tensor_fault(name) + "data_offsets span " + std::to_string(tensor.end - tensor.begin) +
                              " bytes but dtype " + safetensors_dtype_code(tensor.dtype) + " and shape " +
                              safetensors_shape_text(tensor.shape) + " need " + std::to_string(expected));
  return tensor;
}

std::string byte_range(const SafetensorsEntry& t) {
  return "bytes " + std::to_string(t.begin) + ".." + std::to_string(t.end);
}

// The tensors, in the order of their bytes, must cover the data section exactly once: an
// overlap would give two tensors the same weights, a gap or trailing bytes mean a file that no
// writer made as it stands.
void check_layout(std::vector<SafetensorsEntry>& tensors, std::uint64_t data_size, const std::string& path) {
  std::sort(tensors.begin(), tensors.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const SafetensorsEntry& t = tensors[i];
    if (t.begin < covered)
      throw FileError(path, tensor_fault(t.name) + "its " + byte_range(t) + " overlap tensor " +
                                text::quote(tensors[i - 1].name) + " (" + byte_range(tensors[i - 1]) +
                                " of the data section)");
    if (t.begin > covered)
      throw FileError(path, tensor_fault(t.name) + "it starts at byte " + std::to_string(t.begin) +
                                " of the data section, leaving a gap: bytes " + std::to_string(covered) + ".." +
                                std::to_string(t.begin) + " belong to no tensor");
    if (t.end > data_size)
      throw FileError(path, "truncated safetensors file: tensor " + text::quote(t.name) + " ends at byte " +
                                std::to_string(t.end) + " of the data section, which has " +
                                std::to_string(data_size));
    covered = t.end;
  }
  if (covered != data_size)
    throw FileError(path, "bad safetensors file: " + std::to_string(data_size - covered) +
                              " trailing bytes after the last tensor (the tensors cover " +
                              std::to_string(covered) + " of the " + std::to_string(data_size) +
                              " bytes of the data section)");
}

}  // namespace

const char* safetensors_dtype_code(SafetensorsDType dtype) { return entry_for(dtype).code; }

std::size_t safetensors_dtype_bits(SafetensorsDType dtype) { return entry_for(dtype).bits; }

std::string safetensors_shape_text(const std::vector<std::int64_t>& shape) {
  std::vector<std::string> shown;
  for (std::size_t i = 0; i < std::min(shape.size(), kShownDimensions); ++i) shown.push_back(std::to_string(shape[i]));
  if (shape.size() > kShownDimensions) shown.push_back("... (" + std::to_string(shape.size()) + " dimensions)");
  return "[" + text::join(shown, ", ") + "]";
}

SafetensorsHeader parse_safetensors_header(const unsigned char* file, std::uint64_t file_size,
                                           const std::string& path) {
  const std::uint64_t length = read_header_length(file, file_size, path);
  const auto* json_begin = reinterpret_cast<const char*>(file + kLengthBytes);
  const Json json = parse_json(json_begin, json_begin + length, path);
  SafetensorsHeader header;
  header.data_offset = kLengthBytes + length;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__")
      header.metadata = read_metadata(entry, path);
    else
      header.tensors.push_back(read_entry(name, entry, path));
  }
  check_layout(header.tensors, file_size - header.data_offset, path);
  return header;
}

}  // namespace accel::models
