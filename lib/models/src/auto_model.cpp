#include "accel/models/auto_model.h"

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "json_keys.h"

#include <filesystem>

namespace accel::models {

// Each family's one place (see docs/architecture.md, "Adding a model family").
ModelFamily gpt2_family();   // gpt2_config.cpp
ModelFamily llama_family();  // llama_config.cpp

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families{gpt2_family(), llama_family()};
  return families;
}

const ModelFamily* find_family(const std::string& model_type) {
  for (const auto& family : model_families())
    for (const auto& type : family.model_types)
      if (type == model_type) return &family;
  return nullptr;
}

std::string supported_model_types() {
  std::vector<std::string> types;
  for (const auto& family : model_families()) types.insert(types.end(), family.model_types.begin(), family.model_types.end());
  return text::join(types, ", ");
}

std::string model_families_table() {
  std::string table = "| family | `model_type` in config.json | blocks | accepted config features |\n|---|---|---|---|\n";
  for (const auto& family : model_families()) {
    std::vector<std::string> types;
    for (const auto& type : family.model_types) types.push_back("`" + type + "`");
    table += "| " + family.name + " | " + text::join(types, ", ") + " | " + family.block_names + " | " +
             text::join(family.features, "; ") + " |\n";
  }
  return table;
}

LoadedModel load_causal_lm(const std::string& dir, const LoadOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw FileError(dir, "not a checkpoint directory", ENOENT);
  const auto config_path = (fs::path(dir) / "config.json").string();
  const auto config = detail::parse_json_object(detail::read_text_file(config_path, "config"), config_path);
  std::string type;
  for (const auto& family : model_families())
    if (type.empty() && !family.untyped_key.empty() && config.contains(family.untyped_key)) type = family.model_types.front();
  detail::read_key(config, "model_type", type, config_path);
  const auto* family = find_family(type);
  if (family == nullptr)
    throw UsageError(config_path + ": model_type '" + type + "' is not supported; accepted: " + supported_model_types());
  return family->load(dir, options);
}

torch::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  throw UsageError("unknown dtype '" + name + "'; accepted: float32 (fp32), bfloat16 (bf16), float16 (fp16)");
}

}  // namespace accel::models
