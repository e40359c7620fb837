#include "model.h"

#include <torch/torch.h>

namespace accel::examples {
namespace {

// Printable ASCII is the vocabulary: every generated string is readable and fits on one line.
constexpr int kFirstChar = 32;
constexpr int kVocab = 95;
constexpr int kContext = 8;
constexpr int kHidden = 768;

int token_of(char c) {
  const int code = static_cast<unsigned char>(c);
  return code >= kFirstChar && code < kFirstChar + kVocab ? code - kFirstChar : 0;
}

// A character-level next-token predictor over the last kContext characters.
struct TinyLmImpl : torch::nn::Module {
  TinyLmImpl()
      : embed(register_module("embed", torch::nn::Embedding(kVocab, 64))),
        mlp(register_module("mlp", torch::nn::Sequential(torch::nn::Linear(kContext * 64, kHidden), torch::nn::GELU(),
                                                          torch::nn::Linear(kHidden, kHidden), torch::nn::GELU(),
                                                          torch::nn::Linear(kHidden, kVocab)))) {}
  torch::Tensor forward(const torch::Tensor& context) { return mlp->forward(embed->forward(context).flatten(1)); }
  torch::nn::Embedding embed;
  torch::nn::Sequential mlp;
};
TORCH_MODULE(TinyLm);

}  // namespace

std::vector<std::string> run_model(const std::vector<std::string>& prompts, const c10::Device& device,
                                   const GenerationOptions& options) {
  torch::manual_seed(20240601);
  TinyLm model;
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  std::vector<std::string> outputs;
  for (const auto& prompt : prompts) {
    std::vector<std::int64_t> window(kContext, 0);
    for (char c : prompt) {
      window.erase(window.begin());
      window.push_back(token_of(c));
    }
    std::string generated;
    for (int i = 0; i < options.max_new_tokens; ++i) {
      const auto context = torch::tensor(window, torch::kLong).unsqueeze(0).to(device);
      const auto next = model->forward(context).argmax(-1).item<std::int64_t>();
      generated += static_cast<char>(kFirstChar + next);
      window.erase(window.begin());
      window.push_back(next);
    }
    outputs.push_back(generated);
  }
  return outputs;
}

}  // namespace accel::examples
