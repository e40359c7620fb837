#include "accel/core/error.h"
#include "accel/models/auto_model.h"  // parse_dtype
#include "accel/models/gpt2.h"
#include "accel/models/sequential.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <fstream>

using namespace accel::models;
using accel::test::TempDir;
using accel::models::testing::tiny_config;
using Catch::Matchers::Contains;

namespace {

GPT2Options tiny_options(std::uint64_t seed = 7) {
  GPT2Options o;
  o.config = tiny_config();
  o.seed = seed;
  return o;
}

torch::Tensor sample_ids(std::int64_t batch, std::int64_t tokens, std::int64_t seed = 3) {
  torch::manual_seed(seed);
  return torch::randint(0, tiny_config().vocab_size, {batch, tokens}, torch::kLong);
}

std::int64_t numel_of(const Block& block) {
  std::int64_t n = 0;
  for (const auto& p : block.parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST_CASE("GPT-2 exposes its blocks in order with parameter counts known before building",
          "[models][gpt2]") {
  for (auto head : {GPT2Head::kNone, GPT2Head::kLanguageModel, GPT2Head::kSequenceClassification}) {
    GPT2 model(head, tiny_options());
    const auto specs = model.blocks();
    REQUIRE(specs.size() == 5);
    CHECK(specs[0].name == "embeddings");
    CHECK(specs[1].name == "h.0");
    CHECK(specs[3].name == "h.2");
    CHECK(specs[4].name == "head");
    for (const auto& spec : specs) CHECK(numel_of(*spec.build()) == spec.parameter_count);
  }
  // GPT-2 small: the well-known 124,439,808 parameters (wte counted once).
  GPT2LMHeadModel small(GPT2Options{});
  std::int64_t total = 0;
  for (const auto& spec : small.blocks()) total += spec.parameter_count;
  CHECK(total - 50257 * 768 == 124439808);
}

TEST_CASE("the plain forward over all blocks equals the model's own forward", "[models][gpt2]") {
  GPT2LMHeadModel model(tiny_options());
  const auto ids = sample_ids(2, 9);
  const auto mask = torch::ones({2, 9}, torch::kLong);
  const auto logits = model.forward(ids, mask);
  CHECK(logits.sizes() == std::vector<std::int64_t>{2, 9, 97});
  const auto reference = SequentialBlocks(model).forward({ids, mask});
  REQUIRE(reference.size() == 1);
  CHECK(torch::allclose(reference[0], logits, 1e-5, 1e-6));

  // Blocks built one by one (as separate pipeline stages would) chain to the same result.
  Activations acts{ids};
  for (const auto& spec : model.blocks()) acts = spec.build()->forward(acts);
  CHECK(torch::allclose(acts[0], logits, 1e-5, 1e-6));
}

TEST_CASE("random initialisation is seeded", "[models][gpt2]") {
  const auto ids = sample_ids(1, 5);
  const auto a = GPT2LMHeadModel(tiny_options(1)).forward(ids);
  CHECK(torch::equal(a, GPT2LMHeadModel(tiny_options(1)).forward(ids)));
  CHECK_FALSE(torch::allclose(a, GPT2LMHeadModel(tiny_options(2)).forward(ids)));
}

TEST_CASE("models built from a GPT2Config alone get the default seeded weights", "[models][gpt2]") {
  // The README's form: `auto model = accel::models::GPT2ForSequenceClassification(config);`
  const auto config = tiny_config();
  const auto ids = sample_ids(2, 5);
  auto classifier = GPT2ForSequenceClassification(config);
  CHECK(torch::equal(classifier.forward(ids), GPT2ForSequenceClassification(tiny_options(0)).forward(ids)));
  CHECK(torch::equal(GPT2LMHeadModel(config).forward(ids), GPT2LMHeadModel(tiny_options(0)).forward(ids)));
  CHECK(torch::equal(GPT2Model(config).forward(ids), GPT2Model(tiny_options(0)).forward(ids)));
  CHECK(classifier.options().checkpoint.empty());
  CHECK(classifier.options().dtype == torch::kFloat32);
}

TEST_CASE("save_pretrained and loading round trip, with and without the transformer. prefix",
          "[models][gpt2][checkpoint]") {
  TempDir dir;
  const auto ids = sample_ids(2, 6);
  GPT2LMHeadModel original(tiny_options());
  const auto expected = original.forward(ids);
  original.save_pretrained(dir.root());

  SafetensorsFile file(dir.path("model.safetensors"));
  CHECK(file.contains("transformer.h.0.attn.c_attn.weight"));
  CHECK(file.info("transformer.h.0.attn.c_attn.weight").shape == std::vector<std::int64_t>{32, 96});
  CHECK(file.info("transformer.h.0.mlp.c_fc.weight").shape == std::vector<std::int64_t>{32, 128});
  CHECK_FALSE(file.contains("lm_head.weight"));  // tied to wte

  auto loaded = GPT2LMHeadModel(GPT2Options::from_directory(dir.root()));
  CHECK(torch::equal(loaded.forward(ids), expected));

  // A bare GPT2Model checkpoint (no prefix, as the public gpt2 files) feeds an LM head too.
  TempDir bare;
  GPT2Model(tiny_options()).save_pretrained(bare.root());
  CHECK(SafetensorsFile(bare.path("model.safetensors")).contains("h.0.ln_1.weight"));
  CHECK(torch::equal(GPT2LMHeadModel(GPT2Options::from_directory(bare.root())).forward(ids),
                     expected));

  REQUIRE_THROWS_WITH(original.save_pretrained(dir.root()),
                      Contains("config.json") && Contains("refusing to overwrite"));
}

TEST_CASE("an untied lm_head.weight in the checkpoint is used", "[models][gpt2][checkpoint]") {
  TempDir dir;
  GPT2LMHeadModel model(tiny_options());
  auto tensors = model.state_dict();
  tensors.emplace_back("lm_head.weight", torch::zeros({97, 32}));
  save_safetensors(dir.path("model.safetensors"), tensors);
  auto options = tiny_options();
  options.checkpoint = dir.path("model.safetensors");
  CHECK(torch::equal(GPT2LMHeadModel(options).forward(sample_ids(1, 4)), torch::zeros({1, 4, 97})));
}

TEST_CASE("a stage builds its block from a checkpoint holding only that block's tensors",
          "[models][gpt2][checkpoint]") {
  TempDir dir;
  GPT2LMHeadModel model(tiny_options());
  NamedTensors only_h1;
  for (const auto& [name, t] : model.state_dict())
    if (name.rfind("transformer.h.1.", 0) == 0) only_h1.emplace_back(name, t);
  save_safetensors(dir.path("model.safetensors"), only_h1);
  auto options = tiny_options();
  options.checkpoint = dir.path("model.safetensors");
  GPT2LMHeadModel partial(options);
  const auto specs = partial.blocks();
  const auto block = specs[2].build();
  const auto reference = model.blocks()[2].build();
  const Activations in{torch::randn({1, 5, 32}), torch::ones({1, 5}, torch::kLong)};
  CHECK(torch::equal(block->forward(in)[0], reference->forward(in)[0]));
  REQUIRE_THROWS_WITH(specs[1].build(), Contains(options.checkpoint) &&
                                            Contains("missing tensor 'h.0.ln_1.weight'") &&
                                            Contains("transformer.h.0.ln_1.weight"));
}

TEST_CASE("checkpoint errors name the file and the tensor", "[models][gpt2][checkpoint][errors]") {
  TempDir dir;
  GPT2LMHeadModel model(tiny_options());
  auto options = tiny_options();
  options.checkpoint = dir.path("model.safetensors");
  auto write_with = [&](const std::string& target, const torch::Tensor& replacement) {
    NamedTensors tensors;
    for (auto [name, t] : model.state_dict())
      tensors.emplace_back(name, name == target ? replacement : t);
    save_safetensors(options.checkpoint, tensors, {.overwrite = true, .metadata = {}});
  };
  SECTION("wrong shape") {
    write_with("transformer.h.1.attn.c_attn.weight", torch::zeros({96, 32}));
    REQUIRE_THROWS_WITH(GPT2LMHeadModel(options).forward(sample_ids(1, 2)),
                        Contains(options.checkpoint) &&
                            Contains("'transformer.h.1.attn.c_attn.weight' has shape [96, 32]") &&
                            Contains("expects [32, 96]"));
  }
  SECTION("wrong dtype") {
    write_with("transformer.wpe.weight", torch::zeros({48, 32}, torch::kLong));
    REQUIRE_THROWS_WITH(GPT2LMHeadModel(options).forward(sample_ids(1, 2)),
                        Contains("'transformer.wpe.weight' has dtype I64"));
  }
  SECTION("a config that does not match the checkpoint") {
    write_with("", torch::Tensor());
    auto wider = options;
    wider.config.n_positions = 64;
    REQUIRE_THROWS_WITH(GPT2LMHeadModel(wider).forward(sample_ids(1, 2)),
                        Contains("'transformer.wpe.weight' has shape [48, 32]") &&
                            Contains("expects [64, 32]"));
  }
  SECTION("half-precision weights are converted to the model's dtype") {
    write_with("transformer.h.0.ln_1.bias", torch::zeros({32}, torch::kFloat16));
    CHECK(GPT2LMHeadModel(options).forward(sample_ids(1, 2)).sizes() ==
          std::vector<std::int64_t>{1, 2, 97});
  }
  SECTION("missing checkpoint directory files") {
    REQUIRE_THROWS_WITH(GPT2Options::from_directory(dir.root()),
                        Contains("model.safetensors") && Contains("missing"));
    std::ofstream(dir.path("model.safetensors")) << "x";
    REQUIRE_THROWS_WITH(GPT2Options::from_directory(dir.root()),
                        Contains("config.json") && Contains("cannot read config"));
  }
}

TEST_CASE("config.json parsing and validation", "[models][gpt2][config]") {
  const auto c = GPT2Config::from_json(
      R"({"n_layer": 2, "n_embd": 64, "n_head": 4, "n_inner": null, "id2label": {"0": "a", "1": "b", "2": "c"},
          "pad_token_id": 0, "architectures": ["GPT2LMHeadModel"]})",
      "cfg.json");
  CHECK(c.n_layer == 2);
  CHECK(c.inner_dim() == 256);
  CHECK(c.num_labels == 3);
  CHECK(c.pad_token_id == 0);
  CHECK(GPT2Config::from_json(c.to_json(), "again").n_embd == 64);
  REQUIRE_THROWS_WITH(GPT2Config::from_json(R"({"n_embd": 30, "n_head": 4})", "cfg.json"),
                      Contains("cfg.json") && Contains("n_embd (30) must be divisible by n_head (4)"));
  REQUIRE_THROWS_WITH(GPT2Config::from_json(R"({"n_layer": "two"})", "cfg.json"),
                      Contains("cfg.json") && Contains("'n_layer'") && Contains("wrong type"));
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  REQUIRE_THROWS_WITH(GPT2Config::from_json("{\"n_layer\": " + deep + "}", "cfg.json"),
                      Contains("cfg.json") && Contains("nested deeper than 256 levels"));
  const std::string wide = "[\"" + std::string(100000, 'x') + "\"]";
  REQUIRE_THROWS_WITH(GPT2Config::from_json("{\"n_layer\": " + wide + "}", "cfg.json"),
                      Contains("'n_layer'") && Contains("(100004 bytes in all) of the wrong type"));
  REQUIRE_THROWS_WITH(GPT2Config::from_json(R"({"n_layer": 0})", "cfg.json"),
                      Contains("'n_layer' must be a positive integer, got 0"));
  REQUIRE_THROWS_WITH(GPT2Config::from_json(R"({"n_inner": -1})", "cfg.json"),
                      Contains("cfg.json: key 'n_inner' must be positive or null, got -1"));
  CHECK(GPT2Config::from_json(R"({"pad_token_id": 7})", "cfg.json").pad_token_id == 7);
  REQUIRE_THROWS_WITH(GPT2Config::from_json(R"({"pad_token_id": "eos"})", "cfg.json"),
                      Contains("key 'pad_token_id' has value '\"eos\"' of the wrong type"));
  REQUIRE_THROWS_WITH(GPT2Config::from_json(R"({"activation_function": "swish"})", "cfg.json"),
                      Contains("'swish'") && Contains("accepted: gelu_new"));
  REQUIRE_THROWS_WITH(GPT2Config::from_json("{", "cfg.json"), Contains("cfg.json: not valid JSON"));
  REQUIRE_THROWS_WITH(parse_dtype("fp8"), Contains("'fp8'") && Contains("bfloat16"));
  auto half = tiny_options();
  half.dtype = torch::kFloat16;
  REQUIRE_THROWS_WITH(GPT2LMHeadModel(half), Contains("float16 needs a CUDA device"));
}

TEST_CASE("bad inputs to a forward pass say what is expected", "[models][gpt2][errors]") {
  GPT2LMHeadModel model(tiny_options());
  REQUIRE_THROWS_WITH(model.forward(torch::full({1, 3}, 97, torch::kLong)),
                      Contains("token id 97 is outside the vocabulary (ids 0..96)"));
  REQUIRE_THROWS_WITH(model.forward(sample_ids(1, 49)), Contains("n_positions 48"));
  REQUIRE_THROWS_WITH(model.forward(sample_ids(2, 4), torch::ones({2, 5})),
                      Contains("attention_mask has shape [2, 5]") && Contains("expected [2, 4]"));
  REQUIRE_THROWS_WITH(model.blocks()[1].build()->forward({torch::randn({1, 2, 32})}),
                      Contains("block h.0 takes {hidden"));
}

TEST_CASE("left-padded rows match the same rows run alone", "[models][gpt2]") {
  const auto ids = sample_ids(1, 7);
  auto padded = torch::cat({torch::full({1, 3}, 5, torch::kLong), ids}, 1);
  auto mask = torch::cat({torch::zeros({1, 3}, torch::kLong), torch::ones({1, 7}, torch::kLong)}, 1);
  const auto other = sample_ids(1, 10, 9);
  const auto batch_ids = torch::cat({padded, other});
  const auto batch_mask = torch::cat({mask, torch::ones({1, 10}, torch::kLong)});

  GPT2LMHeadModel lm(tiny_options());
  const auto batched = lm.forward(batch_ids, batch_mask);
  CHECK(torch::allclose(batched[0].narrow(0, 3, 7), lm.forward(ids)[0], 1e-5, 1e-5));
  CHECK(torch::allclose(batched[1], lm.forward(other)[0], 1e-5, 1e-5));

  GPT2ForSequenceClassification cls(tiny_options());
  const auto scores = cls.forward(batch_ids, batch_mask);
  CHECK(scores.sizes() == std::vector<std::int64_t>{2, 3});
  CHECK(torch::allclose(scores[0], cls.forward(ids)[0], 1e-5, 1e-5));
  // Right padding pools at the last real token too.
  const auto right = cls.forward(torch::cat({ids, torch::zeros({1, 2}, torch::kLong)}, 1),
                                 torch::cat({torch::ones({1, 7}, torch::kLong),
                                             torch::zeros({1, 2}, torch::kLong)}, 1));
  CHECK(torch::allclose(right[0], scores[0], 1e-5, 1e-5));

  const auto hidden = GPT2Model(tiny_options()).forward(ids);
  CHECK(hidden.sizes() == std::vector<std::int64_t>{1, 7, 32});
}

TEST_CASE("bfloat16 on CPU stays close to float32", "[models][gpt2]") {
  const auto ids = sample_ids(2, 8);
  auto bf16 = tiny_options();
  bf16.dtype = torch::kBFloat16;
  const auto reference = GPT2LMHeadModel(tiny_options()).forward(ids);
  const auto reduced = GPT2LMHeadModel(bf16).forward(ids);
  CHECK(reduced.scalar_type() == torch::kFloat32);
  CHECK(torch::allclose(reduced, reference, 0.05, 0.05));
  INFO("max abs diff " << (reduced - reference).abs().max().item<float>() << " of max " << reference.abs().max().item<float>());
  CHECK((reduced - reference).abs().max().item<float>() < 0.02 * reference.abs().max().item<float>());
}
