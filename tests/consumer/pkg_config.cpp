// Built with nothing but `pkg-config --cflags --libs accel-config` against an install prefix:
// reads a config text (accel-config, with yaml-cpp) trimmed by accel-core.
#include <iostream>

#include "accel/config/config.h"
#include "accel/core/text.h"

int main() {
  const auto text = accel::text::trim("  num_processes: 3  ") + "\n";
  const auto loaded = accel::config::parse_config(text, accel::config::Format::Yaml, "inline.yaml");
  std::cout << "num_processes " << loaded.config.num_processes.value_or(0) << std::endl;
  return 0;
}
