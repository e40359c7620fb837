// Fuzzes the batch input reader: after a selector byte (odd: a prompts file, even: an OpenAI
// batch file), the bytes are the file. Reading must give entries or raise accel::Error; every
// entry's output line must be valid JSON; custom_ids of served requests must be unique; every
// refusal must name its line.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "accel/batch/output.h"
#include "accel/batch/request.h"
#include "accel/core/error.h"

namespace {

using namespace accel::batch;

void check(const BatchInput& input) {
  const OutputContext context{.model = "fuzz", .run_tag = "f"};
  std::set<std::string> ids;
  for (std::size_t i = 0; i < input.entries.size(); ++i) {
    std::string line;
    if (const auto* request = std::get_if<Request>(&input.entries[i])) {
      if (!ids.insert(request->custom_id).second) std::abort();
      if (request->endpoint == Endpoint::kChatCompletions && !nlohmann::json::accept(request->chat.messages)) std::abort();
      line = format_completion(*request, i, Completion{.text = request->prompt}, 0, context);
    } else {
      const auto& refusal = std::get<Refusal>(input.entries[i]);
      if (refusal.message.rfind("line " + std::to_string(refusal.line) + ": ", 0) != 0) std::abort();
      line = format_refusal(refusal, i, context);
    }
    if (!nlohmann::json::accept(line)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    check((data[0] & 1) != 0 ? parse_prompts_text(text, "fuzz") : parse_batch_text(text, "fuzz"));
  } catch (const accel::Error&) {
  }
  return 0;
}
