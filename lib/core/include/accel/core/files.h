#pragma once
// Writing a file so that a reader never sees half of it.
#include <string>

namespace accel::files {

// Writes `contents` to a temporary file beside `path` and renames it over `path` (replacing an
// existing file). On failure the temporary is removed and accel::FileError names the path.
void replace_atomically(const std::string& path, const std::string& contents);

}  // namespace accel::files
