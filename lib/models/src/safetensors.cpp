#include "accel/models/safetensors.h"

#include "accel/core/error.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

namespace accel::models {
namespace {

struct DTypeCode {
  const char* name;
  torch::ScalarType type;
};

constexpr DTypeCode kDTypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
    {"I16", torch::kInt16}, {"I8", torch::kInt8}, {"U8", torch::kUInt8}, {"BOOL", torch::kBool},
};

std::string accepted_dtype_names() {
  std::string out;
  for (const auto& d : kDTypes) out += std::string(out.empty() ? "" : ", ") + d.name;
  return out;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

// A cap on the JSON header so a corrupt length cannot make us allocate gigabytes.
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  for (const auto& d : kDTypes)
    if (d.type == dtype) return d.name;
  throw UsageError(std::string("safetensors cannot store dtype ") + c10::toString(dtype) +
                   "; accepted: " + accepted_dtype_names());
}

struct SafetensorsFile::Mapping {
  void* data = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (data != nullptr) munmap(data, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), mapping_(std::make_shared<Mapping>()) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(path, "cannot open safetensors file", errno);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw FileError(path, "cannot stat safetensors file", err);
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw FileError(path, "truncated safetensors file: " + std::to_string(file_size) +
                              " bytes, fewer than the 8-byte header length");
  }
  void* data = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (data == MAP_FAILED) throw FileError(path, "cannot map safetensors file", map_errno);
  mapping_->data = data;
  mapping_->size = file_size;

  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxHeaderBytes)
    throw FileError(path, "bad safetensors header: declared header length " +
                              std::to_string(header_size) + " exceeds the 100 MiB limit");
  if (8 + header_size > file_size)
    throw FileError(path, "truncated safetensors file: header declares " +
                              std::to_string(header_size) + " bytes but the file has " +
                              std::to_string(file_size - 8) + " after the length");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, std::string("bad safetensors header: not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw FileError(path, "bad safetensors header: not a JSON object");

  data_offset_ = 8 + header_size;
  const std::uint64_t data_size = file_size - data_offset_;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        throw FileError(path, "bad safetensors header: __metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw FileError(path, "bad safetensors header: __metadata__." + key + " is not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "bad safetensors header for tensor '" + name + "': ";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets"))
      throw FileError(path, where + "expected an object with dtype, shape and data_offsets");
    TensorInfo info;
    info.name = name;
    const auto& dtype = entry["dtype"];
    const auto code = std::find_if(std::begin(kDTypes), std::end(kDTypes), [&](const DTypeCode& d) {
      return dtype.is_string() && dtype.get<std::string>() == d.name;
    });
    if (code == std::end(kDTypes))
      throw FileError(path, where + "unsupported dtype " + dtype.dump() + "; accepted: " +
                                accepted_dtype_names());
    info.dtype = code->type;
    const auto& shape = entry["shape"];
    const auto& offsets = entry["data_offsets"];
    if (!shape.is_array() ||
        !std::all_of(shape.begin(), shape.end(),
                     [](const nlohmann::json& d) { return d.is_number_unsigned(); }))
      throw FileError(path, where + "shape must be a list of non-negative integers");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw FileError(path, where + "data_offsets must be two non-negative integers");
    std::uint64_t numel = 1;
    for (const auto& d : shape) {
      info.shape.push_back(d.get<std::int64_t>());
      numel *= d.get<std::uint64_t>();
    }
    info.begin = offsets[0].get<std::uint64_t>();
    info.end = offsets[1].get<std::uint64_t>();
    if (info.end < info.begin)
      throw FileError(path, where + "data_offsets end before they begin");
    const std::uint64_t expected = numel * c10::elementSize(info.dtype);
    if (info.end - info.begin != expected)
      throw FileError(path, where + "data_offsets span " + std::to_string(info.end - info.begin) +
                                " bytes but dtype " + code->name + " and shape " +
                                shape_text(info.shape) + " need " + std::to_string(expected));
    if (info.end > data_size)
      throw FileError(path, "truncated safetensors file: tensor '" + name + "' ends at byte " +
                                std::to_string(info.end) + " of the data section, which has " +
                                std::to_string(data_size));
    tensors_.emplace(name, std::move(info));
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
  auto out = torch::empty(t.shape, torch::TensorOptions().dtype(t.dtype));
  const auto* start = static_cast<const char*>(mapping_->data) + data_offset_ + t.begin;
  std::memcpy(out.data_ptr(), start, t.end - t.begin);
  return out;
}

torch::Tensor SafetensorsFile::get_floating(const std::string& name,
                                            const std::vector<std::int64_t>& shape,
                                            torch::ScalarType dtype) const {
  const TensorInfo& t = info(name);
  if (!c10::isFloatingType(t.dtype))
    throw FileError(path_, "tensor '" + name + "' has dtype " + safetensors_dtype_name(t.dtype) +
                               "; expected a floating dtype (F32, F16, BF16 or F64)");
  if (t.shape != shape)
    throw FileError(path_, "tensor '" + name + "' has shape " + shape_text(t.shape) +
                               "; the config expects " + shape_text(shape));
  return get(name).to(dtype);
}

namespace {

// Removes the temporary file unless the write completed and was renamed into place.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!committed_) std::remove(path_.c_str());
  }
  const std::string& path() const { return path_; }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  bool committed_ = false;
};

void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw FileError(path, "cannot write", errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const SaveOptions& options) {
  struct stat st {};
  if (!options.overwrite && ::stat(path.c_str(), &st) == 0)
    throw FileError(path, "already exists; refusing to overwrite it (pass overwrite to replace it)");

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

  TempFile temp(path + ".tmp." + std::to_string(::getpid()));
  const int fd = ::open(temp.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError(temp.path(), "cannot create", errno);
  try {
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
    write_all(fd, length, sizeof length, temp.path());
    write_all(fd, text.data(), text.size(), temp.path());
    for (const auto& t : contiguous)
      write_all(fd, t.data_ptr(), t.numel() * t.element_size(), temp.path());
    if (::fsync(fd) != 0) throw FileError(temp.path(), "cannot flush", errno);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw FileError(temp.path(), "cannot close", errno);
  if (std::rename(temp.path().c_str(), path.c_str()) != 0)
    throw FileError(path, "cannot rename " + temp.path() + " to it", errno);
  temp.commit();
}

}  // namespace accel::models
