#include "accel/models/safetensors.h"

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>

namespace accel::models {
namespace {

// The stored dtypes LibTorch has, and their tensor dtypes.
constexpr std::pair<SafetensorsDType, torch::ScalarType> kReadable[] = {
    {SafetensorsDType::F64, torch::kFloat64}, {SafetensorsDType::F32, torch::kFloat32},
    {SafetensorsDType::F16, torch::kFloat16}, {SafetensorsDType::BF16, torch::kBFloat16},
    {SafetensorsDType::I64, torch::kInt64},   {SafetensorsDType::I32, torch::kInt32},
    {SafetensorsDType::I16, torch::kInt16},   {SafetensorsDType::I8, torch::kInt8},
    {SafetensorsDType::U8, torch::kUInt8},    {SafetensorsDType::BOOL, torch::kBool},
    {SafetensorsDType::C64, torch::kComplexFloat},
};

std::optional<torch::ScalarType> torch_dtype(SafetensorsDType dtype) {
  for (const auto& [stored, scalar] : kReadable)
    if (stored == dtype) return scalar;
  return std::nullopt;
}

}  // namespace

std::string readable_safetensors_dtype_codes() {
  std::vector<std::string> codes;
  for (const auto& readable : kReadable) codes.push_back(safetensors_dtype_code(readable.first));
  return text::join(codes, ", ");
}

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  for (const auto& [stored, scalar] : kReadable)
    if (scalar == dtype) return safetensors_dtype_code(stored);
  throw UsageError(std::string("safetensors cannot store dtype ") + c10::toString(dtype) +
                   "; accepted: " + readable_safetensors_dtype_codes());
}

struct SafetensorsFile::Mapping {
  void* data = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (data != nullptr) munmap(data, size);
  }
};

namespace {

// Maps the whole file copy-on-write (the file itself is never written); an empty file maps nothing (mmap refuses length 0) and is
// left to the header parser to refuse as truncated.
std::pair<void*, std::size_t> map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(path, "cannot open safetensors file", errno);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw FileError(path, "cannot stat safetensors file", err);
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* data = size == 0 ? nullptr : mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (data == MAP_FAILED) throw FileError(path, "cannot map safetensors file", map_errno);
  return {data, size};
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), mapping_(std::make_shared<Mapping>()) {
  std::tie(mapping_->data, mapping_->size) = map_file(path);
  SafetensorsHeader header =
      parse_safetensors_header(static_cast<const unsigned char*>(mapping_->data), mapping_->size, path);
  data_offset_ = header.data_offset;
  metadata_ = std::move(header.metadata);
  for (auto& t : header.tensors) {
    const std::string name = t.name;
    tensors_.emplace(name, TensorInfo{std::move(t.name), t.dtype, std::move(t.shape), t.begin, t.end});
  }
}

bool SafetensorsFile::contains(const std::string& name) const { return tensors_.count(name) > 0; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& entry : tensors_) out.push_back(entry.first);
  return out;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw FileError(path_, "missing tensor '" + name + "' (the file holds " +
                               std::to_string(tensors_.size()) + " tensors)");
  return it->second;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo& t = info(name);
  const auto held = torch_dtype(t.dtype);
  if (!held)
    throw FileError(path_, "tensor " + text::quote(name) + " has dtype " + safetensors_dtype_code(t.dtype) +
                               ", which LibTorch cannot hold; readable dtypes: " +
                               readable_safetensors_dtype_codes());
  auto out = torch::empty(t.shape, torch::TensorOptions().dtype(*held));
  const auto* start = static_cast<const char*>(mapping_->data) + data_offset_ + t.begin;
  std::memcpy(out.data_ptr(), start, t.end - t.begin);
  return out;
}

torch::Tensor SafetensorsFile::get_floating(const std::string& name,
                                            const std::vector<std::int64_t>& shape,
                                            torch::ScalarType dtype) const {
  const TensorInfo& t = info(name);
  const auto held = torch_dtype(t.dtype);
  if (!held || !c10::isFloatingType(*held))
    throw FileError(path_, "tensor " + text::quote(name) + " has dtype " + safetensors_dtype_code(t.dtype) +
                               "; expected a floating dtype (F32, F16, BF16 or F64)");
  if (t.shape != shape)
    throw FileError(path_, "tensor '" + name + "' has shape " + safetensors_shape_text(t.shape) +
                               "; the config expects " + safetensors_shape_text(shape));
  const auto* start = static_cast<const char*>(mapping_->data) + data_offset_ + t.begin;
  if (*held != dtype || reinterpret_cast<std::uintptr_t>(start) % c10::elementSize(dtype) != 0)
    return get(name).to(dtype);
  // No conversion needed: the tensor is the file's bytes in place (zero copies; pages are read
  // on first touch and shared with every process mapping the file). It keeps the mapping alive,
  // and the mapping is private, so a write to the tensor changes only this process's copy.
  auto mapping = mapping_;
  return torch::from_blob(const_cast<char*>(start), t.shape, [mapping](void*) {},
                          torch::TensorOptions().dtype(dtype));
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const SaveOptions& options) {
  const std::string refusal = "already exists; refusing to overwrite it (pass overwrite to replace it)";
  struct stat st {};
  if (!options.overwrite && ::stat(path.c_str(), &st) == 0) throw FileError(path, refusal);  // again on commit

  nlohmann::json header = nlohmann::json::object();
  if (!options.metadata.empty()) header["__metadata__"] = options.metadata;
  std::vector<torch::Tensor> contiguous;
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || !seen.insert(name).second)
      throw UsageError("cannot save '" + name + "' to " + path +
                       ": tensor names must be unique and not __metadata__");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const std::uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(std::move(t));
  }
  std::string text = header.dump();
  // The format recommends padding the header with spaces so the data starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  files::PendingFile file(path);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  file.write(length, sizeof length);
  file.write(text);
  for (const auto& t : contiguous) file.write(t.data_ptr(), t.numel() * t.element_size());
  if (options.overwrite) {
    file.commit_replacing();
  } else if (!file.commit_if_absent()) {
    throw FileError(path, refusal);
  }
}

}  // namespace accel::models
