// print-env [NAME...]: prints NAME=value for each named variable ("NAME unset" when absent),
// or the whole environment without arguments.
#include <cstdio>
#include <cstdlib>

extern char** environ;

int main(int argc, char** argv) {
  if (argc == 1) {
    for (char** var = environ; *var; ++var) std::printf("%s\n", *var);
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    const char* value = std::getenv(argv[i]);
    if (value) std::printf("%s=%s\n", argv[i], value);
    else std::printf("%s unset\n", argv[i]);
  }
  return 0;
}
