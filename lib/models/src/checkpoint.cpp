#include "accel/models/checkpoint.h"

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

namespace accel::models {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool is_index(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

nlohmann::json read_index(const std::string& path) {
  const std::string text = files::read_whole(path, "cannot read the checkpoint index");
  if (const auto problem = text::json_nesting_problem(text))
    throw FileError(path, "checkpoint index: " + *problem);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, "checkpoint index is not valid JSON (" + text::excerpt(e.what()) + ")");
  }
}

}  // namespace

std::string Checkpoint::weights_file(const std::string& dir) {
  if (!fs::is_directory(dir)) throw FileError(dir, "not a checkpoint directory", ENOENT);
  for (const char* name : {kIndexFile, kSingleFile})
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  throw FileError(dir, std::string("holds no weights; expected ") + kSingleFile + " or " + kIndexFile +
                           " with its shards, and both are missing",
                  ENOENT);
}

Checkpoint::Checkpoint(const std::string& path)
    : path_(fs::is_directory(path) ? weights_file(path) : path) {
  if (!is_index(path_)) {
    auto file = std::make_shared<const SafetensorsFile>(path_);
    for (const auto& name : file->names()) shard_of_[name] = path_;
    opened_[path_] = std::move(file);
    return;
  }
  const auto index = read_index(path_);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw FileError(path_, "checkpoint index has no \"weight_map\" object (tensor name -> shard "
                           "file)");
  const auto dir = fs::path(path_).parent_path();
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string())
      throw FileError(path_, "weight_map[\"" + name + "\"] is " + text::quote(file.dump()) +
                                 "; expected the name of a shard file");
    const auto shard = file.get<std::string>();
    if (shard.empty() || fs::path(shard).filename() != shard || shard == "." || shard == "..")
      throw FileError(path_, "weight_map[\"" + name + "\"] names shard '" + shard +
                                 "'; expected a file name in the index's own directory");
    shard_of_[name] = (dir / shard).string();
  }
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& entry : shard_of_) out.push_back(entry.first);
  return out;
}

const SafetensorsFile& Checkpoint::shard(const std::string& file) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = opened_[file];
  if (!slot) {
    try {
      slot = std::make_shared<const SafetensorsFile>(file);
    } catch (...) {
      opened_.erase(file);
      throw;
    }
  }
  return *slot;
}

torch::Tensor Checkpoint::get_floating(const std::string& name,
                                       const std::vector<std::int64_t>& shape,
                                       torch::ScalarType dtype) const {
  const auto found = shard_of_.find(name);
  if (found == shard_of_.end())
    throw FileError(path_, "missing tensor " + text::quote(name));
  const auto& file = shard(found->second);
  if (!file.contains(name))
    throw FileError(file.path(), "does not hold tensor " + text::quote(name) + ", which " + path_ +
                                     " places in it");
  return file.get_floating(name, shape, dtype);
}

std::vector<std::string> Checkpoint::opened_files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& entry : opened_) out.push_back(entry.first);
  return out;
}

}  // namespace accel::models
