#pragma once
// The weights of a checkpoint in Hugging Face layout: one model.safetensors, or a
// model.safetensors.index.json whose weight_map names the shard holding each tensor. Shards
// are opened on first use, so a pipeline stage that loads only its own blocks maps only the
// shards that hold them.
#include "accel/models/safetensors.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace accel::models {

class Checkpoint {
 public:
  // `path`: a .safetensors file, an index .json, or a directory holding model.safetensors or
  // model.safetensors.index.json (the index wins when both are there). Throws FileError naming
  // the file and what is wrong (missing, not JSON, no weight_map, a shard name with a
  // directory in it).
  explicit Checkpoint(const std::string& path);

  // The weights file of `dir`, or FileError naming the directory and the files looked for.
  static std::string weights_file(const std::string& dir);

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return shard_of_.count(name) > 0; }
  std::vector<std::string> names() const;  // sorted

  // SafetensorsFile::get_floating on the shard that holds `name`. Throws FileError naming the
  // checkpoint and the tensor when it is absent, or the shard when it is missing or does not
  // hold the tensor its index promised.
  torch::Tensor get_floating(const std::string& name, const std::vector<std::int64_t>& shape,
                             torch::ScalarType dtype) const;

  // The shard files opened so far, sorted (all of them for a single-file checkpoint).
  std::vector<std::string> opened_files() const;

 private:
  const SafetensorsFile& shard(const std::string& file) const;

  std::string path_;
  std::map<std::string, std::string> shard_of_;  // tensor name -> shard file path
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::shared_ptr<const SafetensorsFile>> opened_;
};

}  // namespace accel::models
