#pragma once
// Passes the launcher's stdin on to rank 0 (private to lib/launch).
#include <poll.h>

#include <optional>
#include <string>

#include "fd.h"

namespace accel::launch {

// Workers run in a process group of their own, which is never the terminal's foreground
// group: a worker reading the terminal itself would be stopped by SIGTTIN. So, as mpirun does,
// the launcher reads its own stdin and relays it through a pipe to rank 0; the other ranks get
// /dev/null. End of the launcher's stdin closes rank 0's pipe. Nothing is read while rank 0
// has not taken what was read before, and nothing while the launcher is itself a background
// job of a terminal (that read would stop the launcher).
class StdinRelay {
 public:
  explicit StdinRelay(int source_fd) : source_(source_fd) {}

  // A new pipe for the rank 0 of an attempt; returns its read end. Forgets the previous one.
  Fd attach();
  // The descriptor to poll now and for what; nullopt when there is nothing to do.
  std::optional<pollfd> wanted() const;
  // Called when wanted()'s descriptor is ready (or failed).
  void on_ready(short revents);

 private:
  int source_;
  bool source_open_ = true;
  Fd target_;            // write end of rank 0's stdin pipe, non-blocking
  std::string pending_;  // read from the source, not yet taken by rank 0
};

}  // namespace accel::launch
