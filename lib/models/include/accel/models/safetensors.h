#pragma once
// Reader and writer for the safetensors format (8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw bytes). The reader maps
// the file: opening it parses only the header, and get() touches only the pages of the tensor
// asked for, so a pipeline stage reads its own weights and none of the rest.
#include "accel/models/safetensors_header.h"

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace accel::models {

struct TensorInfo {
  std::string name;
  SafetensorsDType dtype;  // as stored; get() reads only those LibTorch has (readable_...())
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets into the data section
  std::uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps `path` and validates the header against the file size. Throws FileError naming the
  // file (and the tensor, where one is at fault) for a missing file, a bad header or a
  // truncated file.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Throws FileError naming the file and the tensor when it is absent.
  const TensorInfo& info(const std::string& name) const;

  // A copy of the tensor (the mapping may be unaligned and outlives no caller). Throws
  // FileError naming the tensor and its dtype when LibTorch has no such dtype (F8_E4M3, U16,
  // ...): such tensors do not stop the others from being read.
  torch::Tensor get(const std::string& name) const;

  // get() with checks: the shape must equal `shape` and the dtype must be a floating type;
  // the result is converted to `dtype`. Errors name the file, the tensor, what was found and
  // what is expected. When the file already holds `dtype` (and the bytes are aligned), the
  // result views the mapped file instead of copying it; writes to it stay in this process.
  torch::Tensor get_floating(const std::string& name, const std::vector<std::int64_t>& shape,
                             torch::ScalarType dtype) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  std::uint64_t data_offset_ = 0;  // where the data section starts in the file
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct SaveOptions {
  bool overwrite = false;  // refuse to replace an existing file unless asked
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (any device, contiguous or not) to `path` atomically: a temporary file in
// the same directory is renamed over the target only once complete. Throws FileError when the
// file exists and !overwrite, or on IO failure; UsageError on duplicate names or unsupported
// dtypes.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const SaveOptions& options = {});

// The format's dtype code ("F32", "BF16", ...) for a torch dtype; UsageError for one the format
// lacks.
std::string safetensors_dtype_name(torch::ScalarType dtype);
// "F64, F32, ...": the stored dtypes that get() can read, for messages.
std::string readable_safetensors_dtype_codes();

}  // namespace accel::models
