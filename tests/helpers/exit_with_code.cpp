// exit-with-code N: exits with status N; exit-with-code -SIGNAL: kills itself with that signal.
#include <csignal>
#include <cstdlib>
#include <unistd.h>

int main(int argc, char** argv) {
  const int value = argc > 1 ? std::atoi(argv[1]) : 0;
  if (value < 0) {
    std::signal(-value, SIG_DFL);
    ::kill(::getpid(), -value);
  }
  return value;
}
