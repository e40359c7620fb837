// sleep-forever [--child] [--trap] [--ignore] [--setsid] [--linger MS] [DIR]: sleeps until killed.
//   --child   first forks a grandchild that sleeps too (it stays in the worker's process group)
//   --trap    on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2/SIGALRM prints "got <SIG>" and exits 0
//   --ignore  ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT (only SIGKILL stops it)
//   --setsid  leaves the launcher's process group and session first, as a daemon does
//   --linger  with --trap: waits MS milliseconds after the signal before printing (a checkpoint)
//   DIR       writes the pids (own, then the grandchild's) to DIR/<RANK>.pids once ready
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

namespace {
volatile sig_atomic_t received = 0;
void on_signal(int number) { received = number; }
}  // namespace

int main(int argc, char** argv) {
  bool child = false, trap = false, ignore = false;
  int linger_ms = 0;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--child") child = true;
    else if (arg == "--trap") trap = true;
    else if (arg == "--ignore") ignore = true;
    else if (arg == "--setsid") ::setsid();
    else if (arg == "--linger" && i + 1 < argc) linger_ms = std::atoi(argv[++i]);
    else dir = arg;
  }
  for (int number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
    if (ignore) std::signal(number, SIG_IGN);
  }
  for (int number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM}) {
    if (trap) std::signal(number, on_signal);
  }
  pid_t grandchild = 0;
  if (child && (grandchild = ::fork()) == 0) {
    for (;;) ::pause();
  }
  if (!dir.empty()) {
    const char* rank = std::getenv("RANK");
    const std::string path = dir + "/" + (rank ? rank : "x") + ".pids";
    const std::string tmp = path + ".tmp";
    if (FILE* out = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(out, "%d\n", static_cast<int>(::getpid()));
      if (grandchild) std::fprintf(out, "%d\n", static_cast<int>(grandchild));
      std::fclose(out);
      std::rename(tmp.c_str(), path.c_str());  // readers never see a half-written file
    }
  }
  while (!received) ::pause();
  ::usleep(static_cast<useconds_t>(linger_ms) * 1000);
  std::printf("got %s\n", sigabbrev_np(received));
  return 0;
}
