#pragma once
// The questions of `accel-launch config`, separate from the terminal so they can be tested
// with scripted answers.
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>

#include "accel/config/config.h"
#include "accel/core/hardware.h"

namespace accel::config {

// Asks one question at a time on `out` with its default in brackets; an empty answer takes the
// default. An invalid answer is explained and the question asked again. Throws
// accel::UsageError when `in` ends before the last answer (nothing has been written then).
class Asker {
 public:
  Asker(std::istream& in, std::ostream& out) : in_(in), out_(out) {}

  // `check` returns an empty string when the answer is acceptable, else the reason it is not.
  std::string ask(const std::string& question, const std::optional<std::string>& default_answer,
                  const std::function<std::string(const std::string&)>& check);
  bool ask_yes_no(const std::string& question, bool default_answer);
  int ask_integer(const std::string& question, int default_answer, int min, int max);

 private:
  std::istream& in_;
  std::ostream& out_;
};

// Machine type, machines, rank, main address and port, processes, GPU ids, mixed precision.
// Defaults come from `machine` (its GPUs).
Config ask_config(Asker& asker, const hardware::Machine& machine);

}  // namespace accel::config
