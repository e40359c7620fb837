#include "accel/pipeline/adapters.h"

#include <filesystem>

#include "accel/core/error.h"

namespace accel::pipeline {
namespace {

class SequentialChild : public models::Block {
 public:
  SequentialChild(std::string name, torch::nn::AnyModule child) : name_(std::move(name)), child_(std::move(child)) {
    register_module("child", child_.ptr());
  }
  models::Activations forward(const models::Activations& inputs) override {
    if (inputs.size() != 1) {
      throw Error("Sequential child '" + name_ + "' takes one tensor but the previous block produced " +
                  std::to_string(inputs.size()));
    }
    return {child_.forward(inputs.front())};
  }

 private:
  std::string name_;
  torch::nn::AnyModule child_;
};

class ScriptChild : public models::Block {
 public:
  ScriptChild(std::string name, torch::jit::Module child) : name_(std::move(name)), child_(std::move(child)) {}
  models::Activations forward(const models::Activations& inputs) override {
    std::vector<torch::jit::IValue> arguments(inputs.begin(), inputs.end());
    auto result = child_.forward(arguments);
    models::Activations out;
    flatten(result, out);
    return out;
  }

 private:
  void flatten(const torch::jit::IValue& value, models::Activations& out) const {
    if (value.isTensor()) {
      out.push_back(value.toTensor());
    } else if (value.isTuple()) {
      for (const auto& element : value.toTupleRef().elements()) flatten(element, out);
    } else if (value.isList()) {
      for (const auto& element : value.toListRef()) flatten(element, out);
    } else {
      throw Error("TorchScript child '" + name_ + "' returned a " + value.tagKind() +
                  "; a block must return tensors (a tensor, or a tuple or list of them)");
    }
  }

  std::string name_;
  torch::jit::Module child_;
};

std::int64_t count(const std::vector<torch::Tensor>& parameters) {
  std::int64_t n = 0;
  for (const auto& p : parameters) n += p.numel();
  return n;
}

}  // namespace

SequentialModel::SequentialModel(torch::nn::Sequential sequential) : sequential_(std::move(sequential)) {
  if (sequential_->size() == 0) throw UsageError("the torch::nn::Sequential has no children to split into stages");
}

std::vector<models::BlockSpec> SequentialModel::blocks() const {
  std::vector<models::BlockSpec> specs;
  auto children = sequential_->named_children();
  for (std::size_t i = 0; i < sequential_->size(); ++i) {
    const auto& name = children[i].key();
    auto any = sequential_->begin()[static_cast<std::ptrdiff_t>(i)];
    specs.push_back({name, count(children[i].value()->parameters()),
                     [name, any] { return std::make_shared<SequentialChild>(name, any); }});
  }
  return specs;
}

TorchScriptModel::TorchScriptModel(torch::jit::Module module) : module_(std::move(module)) {
  if (module_.named_children().size() == 0) {
    throw UsageError("the TorchScript module has no submodules to split into stages; script an nn.Sequential "
                     "(or a module whose top-level children run in order)");
  }
}

torch::jit::Module load_torchscript(const std::string& path) {
  if (!std::filesystem::exists(path)) throw FileError(path, "does not exist");
  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw FileError(path, std::string("could not be loaded as TorchScript (a file from torch.jit.script(...).save "
                                      "or torch.jit.trace(...).save was expected): ") +
                              e.what_without_backtrace());
  }
}

std::vector<models::BlockSpec> TorchScriptModel::blocks() const {
  std::vector<models::BlockSpec> specs;
  for (const auto& child : module_.named_children()) {
    std::vector<torch::Tensor> parameters;
    for (const auto& p : child.value.parameters()) parameters.push_back(p);
    auto module = child.value;
    auto name = child.name;
    specs.push_back({name, count(parameters), [name, module] { return std::make_shared<ScriptChild>(name, module); }});
  }
  return specs;
}

}  // namespace accel::pipeline
