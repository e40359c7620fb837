// sleep-forever [--child] [--trap] [--ignore] [--setsid] [--linger MS] [DIR]: sleeps until killed.
//   --child   first forks a grandchild that sleeps too (it stays in the worker's process group)
//   --trap    on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2/SIGALRM prints "got <SIG>" and exits 0;
//             one line per delivery, so a signal delivered twice (within --linger) shows twice
//   --ignore  ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT (only SIGKILL stops it)
//   --setsid  leaves the launcher's process group and session first, as a daemon does
//   --linger  with --trap: waits MS milliseconds after the signal before printing (a checkpoint)
//   DIR       writes the pids (own, then the grandchild's) to DIR/<RANK>.pids once ready
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <unistd.h>

namespace {
constexpr int kMaxDeliveries = 16;
volatile sig_atomic_t deliveries[kMaxDeliveries];
volatile sig_atomic_t received = 0;  // deliveries so far
void on_signal(int number) {
  if (received < kMaxDeliveries) deliveries[received] = number;
  received = received + 1;
}
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
  // Sleeps the whole linger even when a further delivery interrupts it.
  timespec left{linger_ms / 1000, (linger_ms % 1000) * 1000000L};
  while (::nanosleep(&left, &left) != 0) {
  }
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  for (int i = 0; i < received && i < kMaxDeliveries; ++i) std::printf("got %s\n", sigabbrev_np(deliveries[i]));
  return 0;
}
