// write-to-stderr [--exit N] [--error-file MESSAGE] [--split] LINE...: writes each LINE to stderr
// (with --split, each in two write() calls 1 ms apart, to provoke interleaving), writes MESSAGE
// to $TORCHELASTIC_ERROR_FILE in torch's JSON format, then exits with N (default 0).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  int code = 0;
  bool split = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--exit" && i + 1 < argc) {
      code = std::atoi(argv[++i]);
    } else if (arg == "--error-file" && i + 1 < argc) {
      const char* path = std::getenv("TORCHELASTIC_ERROR_FILE");
      if (FILE* out = path ? std::fopen(path, "w") : nullptr) {
        std::fprintf(out, "{\"message\": {\"message\": \"%s\", \"extraInfo\": {\"timestamp\": \"0\"}}}", argv[++i]);
        std::fclose(out);
      }
    } else if (arg == "--split") {
      split = true;
    } else {
      const std::string line = arg + "\n";
      const std::size_t half = split ? line.size() / 2 : line.size();
      (void)!::write(STDERR_FILENO, line.data(), half);
      if (split) {
        ::usleep(1000);
        (void)!::write(STDERR_FILENO, line.data() + half, line.size() - half);
      }
    }
  }
  return code;
}
