#pragma once
// Reading and writing config files without ever losing one.
#include <optional>
#include <string>

namespace accel::config {

// The whole file. Throws accel::InputFileError naming `path` when it is missing, a directory or
// unreadable.
std::string read_file(const std::string& path);

struct Written {
  std::string path;
  std::optional<std::string> backup;  // where the replaced file's previous contents went
};

// Writes `contents` to a temporary file beside `path` (creating the directories), syncs it and
// renames it over `path`, so readers see the old file or the new one, never half of one.
// When `path` exists: without `replace` throws accel::UsageError and changes nothing; with it,
// first copies the old file to the first free of path.bak, path.bak.1, path.bak.2, ...
// The new file keeps the old one's permissions (else 0666 less the umask).
Written write_atomically(const std::string& path, const std::string& contents, bool replace);

}  // namespace accel::config
