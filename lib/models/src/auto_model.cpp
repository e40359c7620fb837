#include "accel/models/auto_model.h"

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/gpt2.h"
#include "accel/models/llama.h"
#include "json_keys.h"

#include <filesystem>

namespace accel::models {

LoadedModel load_causal_lm(const std::string& dir, const LoadOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw FileError(dir, "not a checkpoint directory", ENOENT);
  const auto config_path = (fs::path(dir) / "config.json").string();
  const auto config = detail::parse_json_object(detail::read_text_file(config_path, "config"),
                                                config_path);
  // GPT-2 files from before model_type existed carry n_embd.
  std::string type = config.contains("n_embd") ? "gpt2" : "";
  detail::read_key(config, "model_type", type, config_path);
  if (type == "gpt2") {
    auto gpt2 = GPT2Options::from_directory(dir);
    gpt2.dtype = options.dtype;
    gpt2.device = options.device;
    auto model = std::make_shared<GPT2LMHeadModel>(gpt2);
    return {model, model};
  }
  if (is_llama_family(type)) {
    auto llama = LlamaOptions::from_directory(dir);
    llama.dtype = options.dtype;
    llama.device = options.device;
    auto model = std::make_shared<LlamaForCausalLM>(llama);
    return {model, model};
  }
  throw UsageError(config_path + ": model_type '" + type +
                   "' is not supported; accepted: gpt2, llama, mistral, qwen2, qwen3");
}

}  // namespace accel::models
