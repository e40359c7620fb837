#pragma once
// Reads the report a failing worker wrote to $TORCHELASTIC_ERROR_FILE (private to lib/launch).
#include <optional>
#include <string>

namespace accel::launch {

// The message of torch's error-file JSON
//   {"message": {"message": "<Type>: <text>", "extraInfo": {...}}}   or   {"message": "<text>"};
// the file's first line when it is not in that shape; nullopt when there is no such file.
std::optional<std::string> read_error_file(const std::string& path);

}  // namespace accel::launch
