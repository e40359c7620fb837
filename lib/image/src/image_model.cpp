#include "accel/image/image_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/image/png.h"
#include "accel/pipeline/adapters.h"

namespace accel::image {
namespace {

constexpr const char* kAcceptedSignatures =
    "forward(token_ids: Tensor, seed: int, num_steps: int), forward(token_ids: Tensor, seed: int) or "
    "forward(seeded_token_ids: Tensor), returning images [rows, 3, H, W] (floating in [0, 1], or uint8)";

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

bool is_kind(const c10::Argument& argument, c10::TypeKind kind) { return argument.type()->kind() == kind; }

// The signature `schema` (self first) matches, if any.
std::optional<ForwardSignature> match(const c10::FunctionSchema& schema) {
  const auto& a = schema.arguments();
  if (a.size() < 2 || !is_kind(a[1], c10::TypeKind::TensorType)) return std::nullopt;
  if (a.size() == 2) return ForwardSignature::kSeededTokens;
  if (!is_kind(a[2], c10::TypeKind::IntType)) return std::nullopt;
  if (a.size() == 3) return ForwardSignature::kTokensSeed;
  if (a.size() == 4 && is_kind(a[3], c10::TypeKind::IntType)) return ForwardSignature::kTokensSeedSteps;
  return std::nullopt;
}

const c10::FunctionSchema& forward_schema(const torch::jit::Module& module, const std::string& source) {
  const auto forward = module.find_method("forward");
  if (!forward) throw UsageError(source + ": the TorchScript module has no forward method; expected " + kAcceptedSignatures);
  return forward->function().getSchema();
}

// Runs `run` on consecutive batches of exactly `rows` prompts (the last one padded with its last
// prompt) and concatenates the real rows of what it returns; undefined where it returns undefined.
torch::Tensor in_batches(const std::vector<std::string>& prompts, std::size_t rows,
                         const std::function<torch::Tensor(const std::vector<std::string>&)>& run) {
  std::vector<torch::Tensor> parts;
  for (std::size_t start = 0; start < prompts.size(); start += rows) {
    const auto end = std::min(prompts.size(), start + rows);
    std::vector<std::string> batch(prompts.begin() + static_cast<std::ptrdiff_t>(start),
                                   prompts.begin() + static_cast<std::ptrdiff_t>(end));
    const auto real = static_cast<std::int64_t>(batch.size());
    batch.resize(rows, batch.back());
    auto pixels = run(batch);
    if (!pixels.defined()) return {};
    parts.push_back(pixels.slice(0, 0, real));
  }
  return parts.empty() ? torch::empty({0, 0, 0, 3}, torch::kUInt8) : torch::cat(parts);
}

void check_batch_size(const GenerationSettings& settings) {
  if (settings.batch_size < 1) {
    throw UsageError("batch size " + std::to_string(settings.batch_size) + ": expected at least 1 prompt a batch");
  }
}

}  // namespace

torch::Tensor seeded_token_ids(const std::vector<std::string>& prompts, std::int64_t seed) {
  std::size_t longest = 1;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  auto ids = torch::zeros({static_cast<std::int64_t>(prompts.size()), static_cast<std::int64_t>(longest) + 1},
                          torch::kInt64);
  auto view = ids.accessor<std::int64_t, 2>();
  for (std::size_t row = 0; row < prompts.size(); ++row) {
    view[row][0] = seed;
    for (std::size_t i = 0; i < prompts[row].size(); ++i)
      view[row][i + 1] = static_cast<unsigned char>(prompts[row][i]) + 1;
  }
  return ids;
}

torch::Tensor prompt_token_ids(const std::vector<std::string>& prompts) {
  return seeded_token_ids(prompts, 0).slice(1, 1).contiguous();
}

torch::Tensor to_pixels(const torch::Tensor& images, std::int64_t rows, const std::string& source) {
  const std::string expected = "expected images [" + std::to_string(rows) + ", 3, H, W] (one per prompt, RGB)";
  if (images.dim() != 4 || images.size(0) != rows || images.size(1) != 3 || images.size(2) < 1 || images.size(3) < 1) {
    throw UsageError(source + ": the model returned a tensor of shape " + shape_text(images) + "; " + expected);
  }
  torch::Tensor pixels;
  if (images.scalar_type() == torch::kUInt8) {
    pixels = images;
  } else if (c10::isFloatingType(images.scalar_type())) {
    const auto values = images.to(torch::kCPU, torch::kFloat32);
    if (!torch::isfinite(values).all().item<bool>()) {
      throw UsageError(source + ": the model returned images with NaN or infinite values; expected values in [0, 1]");
    }
    pixels = values.clamp(0, 1).mul(255).round().to(torch::kUInt8);
  } else {
    throw UsageError(source + ": the model returned images of dtype " + std::string(c10::toString(images.scalar_type())) +
                     "; expected a floating dtype (values in [0, 1]) or uint8");
  }
  return pixels.to(torch::kCPU).permute({0, 2, 3, 1}).contiguous();
}

ImageModel ImageModel::load(const std::string& path) { return ImageModel(pipeline::load_torchscript(path), path); }

ImageModel::ImageModel(torch::jit::Module module, std::string source)
    : module_(std::move(module)), source_(std::move(source)) {
  const auto signature = match(forward_schema(module_, source_));
  if (!signature) {
    throw UsageError(source_ + ": the model's " + forward_schema(module_, source_).name() + " is " +
                     c10::toString(forward_schema(module_, source_)) + "; expected " + kAcceptedSignatures);
  }
  signature_ = *signature;
  module_.eval();
}

std::string ImageModel::description() const { return source_ + ": " + c10::toString(forward_schema(module_, source_)); }

torch::Tensor ImageModel::generate(const std::vector<std::string>& prompts, const GenerationSettings& settings) const {
  check_batch_size(settings);
  const auto& schema = forward_schema(module_, source_);
  if (settings.num_steps && signature_ != ForwardSignature::kTokensSeedSteps) {
    throw UsageError(source_ + ": num_steps was given but the model's forward takes none (" + c10::toString(schema) + ")");
  }
  if (settings.num_steps && *settings.num_steps < 1) {
    throw UsageError("num_steps " + std::to_string(*settings.num_steps) + ": expected at least 1");
  }
  if (signature_ == ForwardSignature::kTokensSeedSteps && !settings.num_steps && !schema.arguments()[3].default_value()) {
    throw UsageError(source_ + ": the model's forward has no default for num_steps (" + c10::toString(schema) +
                     "); give the number of steps");
  }
  torch::NoGradGuard no_grad;
  auto module = module_;
  return in_batches(prompts, static_cast<std::size_t>(settings.batch_size), [&](const std::vector<std::string>& batch) {
    std::vector<c10::IValue> inputs;
    if (signature_ == ForwardSignature::kSeededTokens) {
      inputs = {seeded_token_ids(batch, settings.seed)};
    } else {
      inputs = {prompt_token_ids(batch), settings.seed};
      if (settings.num_steps) inputs.emplace_back(static_cast<std::int64_t>(*settings.num_steps));
    }
    c10::IValue output;
    try {
      output = module.forward(inputs);
    } catch (const c10::Error& e) {
      throw Error(source_ + ": the model's forward failed: " + e.what_without_backtrace());
    } catch (const std::runtime_error& e) {  // the interpreter's own failures (e.g. a `raise` in the model)
      throw Error(source_ + ": the model's forward failed: " + e.what());
    }
    if (!output.isTensor()) {
      throw UsageError(source_ + ": the model returned a " + output.tagKind() + "; expected a tensor of images");
    }
    return to_pixels(output.toTensor(), static_cast<std::int64_t>(batch.size()), source_);
  });
}

torch::Tensor generate_pipelined(const std::string& path, const std::vector<std::string>& prompts,
                                 const GenerationSettings& settings, pipeline::PipelineOptions options) {
  check_batch_size(settings);
  auto module = pipeline::load_torchscript(path);
  if (ImageModel(module, path).signature() != ForwardSignature::kSeededTokens || settings.num_steps) {
    throw UsageError(path + ": the pipeline route runs an nn.Sequential whose forward takes seeded_token_ids "
                            "alone (forward(seeded_token_ids: Tensor)), without num_steps; this model's is " +
                     c10::toString(forward_schema(module, path)));
  }
  const pipeline::TorchScriptModel model(module);
  const std::vector<std::string> example(static_cast<std::size_t>(settings.batch_size), prompts.at(0));
  auto pipe = pipeline::prepare(model, {seeded_token_ids(example, settings.seed)}, options);
  const auto rows = static_cast<std::size_t>(pipe.num_chunks() * settings.batch_size);
  torch::NoGradGuard no_grad;
  return in_batches(prompts, rows, [&](const std::vector<std::string>& batch) {
    auto out = pipe.forward(seeded_token_ids(batch, settings.seed));
    return pipe.is_last_stage() ? to_pixels(out.at(0), static_cast<std::int64_t>(batch.size()), path) : torch::Tensor();
  });
}

std::vector<std::string> write_results(const std::string& directory, int rank, const torch::Tensor& pixels) {
  std::vector<std::string> written;
  for (std::int64_t i = 0; i < pixels.size(0); ++i) {
    const auto name = "result_" + std::to_string(rank) + (i == 0 ? "" : "_" + std::to_string(i)) + ".png";
    const auto path = (std::filesystem::path(directory) / name).string();
    if (std::filesystem::exists(path)) std::cerr << "image_generation: replacing " << path << " from an earlier run\n";
    const auto picture = pixels[i].contiguous();
    write_png(path, {picture.data_ptr<std::uint8_t>(), static_cast<std::uint32_t>(picture.size(1)),
                     static_cast<std::uint32_t>(picture.size(0))});
    written.push_back(path);
  }
  return written;
}

void prepare_output_directory(const std::string& directory) {
  files::make_directories(directory);
  try {
    files::PendingFile probe((std::filesystem::path(directory) / ".accel-write-check").string());
  } catch (const FileError& e) {
    throw FileError(directory, std::string("is not a directory where the pictures can be written (") + e.what() + ")");
  }
}

}  // namespace accel::image
