// Fuzzes the chat template interpreter: every input is a template that must parse and render a
// fixed conversation within small limits, or raise accel::Error (TemplateError); never crash,
// hang, leak or throw anything else.
#include "accel/core/error.h"
#include "jinja.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace accel::models::jinja;
  static const auto variables = [] {
    DictData vars;
    vars.put("messages", Value::from_json(nlohmann::ordered_json::parse(
                             R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \u00e9 \ud83d\ude80"},
                                 {"role": "assistant", "content": [{"type": "text", "text": "Hello"}],
                                  "tool_calls": [{"function": {"name": "f", "arguments": {"a": [1, 2.5, null]}}}]}])")));
    vars.put("tools", Value::none());
    vars.put("add_generation_prompt", Value::boolean(true));
    vars.put("bos_token", Value::string("<s>"));
    return vars;
  }();
  RenderOptions options;
  options.now = 0;
  options.limits.max_steps = 200'000;
  options.limits.max_output_bytes = 1 << 20;
  options.limits.max_allocated_bytes = 64 << 20;
  try {
    Template(std::string(reinterpret_cast<const char*>(data), size)).render(variables, options);
  } catch (const accel::Error&) {
  }
  return 0;
}
