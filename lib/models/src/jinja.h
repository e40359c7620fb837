#pragma once
// A Jinja interpreter for chat templates: the subset of jinja2 that Hugging Face chat templates
// use, rendering as transformers' environment does (ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and loop controls; raise_exception, strftime_now and
// transformers' tojson). Anything outside the subset is refused naming the template line.
// Bounded: a hostile template ends in TemplateError, never a hang, a crash or exhausted memory.
// Private to lib/models; torch-free (the fuzz target builds it without LibTorch).
#include "jinja_value.h"

#include <ctime>
#include <memory>
#include <optional>
#include <string>

namespace accel::models::jinja {

struct Limits {
  // Expression evaluations and statements executed; a loop that runs away stops here.
  std::int64_t max_steps = 20'000'000;
  // The rendered text.
  std::size_t max_output_bytes = 16u << 20;
  // Bytes of every string and list the render builds, so memory (and the time spent copying)
  // stays bounded whatever the template concatenates.
  std::size_t max_allocated_bytes = 512u << 20;
  // Nested evaluation (expressions, blocks, macro calls) at run time.
  int max_depth = 400;
};

struct RenderOptions {
  Limits limits;
  // What strftime_now() formats (local time); unset: the current time.
  std::optional<std::time_t> now;
};

namespace detail {
struct Parsed;
}

class Template {
 public:
  // TemplateError naming the line and the construct when the source cannot be parsed or uses
  // something outside the supported subset (a tag, a filter or a test).
  explicit Template(const std::string& source);

  // The text for `variables` (messages, add_generation_prompt, special tokens...).
  // TemplateError naming the line for a runtime failure: raise_exception(), an undefined value
  // used, a type error, or a limit reached.
  std::string render(const DictData& variables, const RenderOptions& options = {}) const;

 private:
  std::shared_ptr<const detail::Parsed> parsed_;
};

}  // namespace accel::models::jinja
