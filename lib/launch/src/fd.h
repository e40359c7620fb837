#pragma once
// Pipes (private to lib/launch); descriptors are owned by core's files::Fd.
#include <fcntl.h>
#include <unistd.h>

#include "accel/core/files.h"

namespace accel::launch {

using files::Fd;

struct Pipe {
  Fd read;
  Fd write;
};

// Both ends close-on-exec; the child side is dup2()ed onto its target, which clears the flag.
// `flags`: more pipe2() flags for both ends (O_NONBLOCK for a wake-up pipe that a poll loop
// drains and a signal handler or thread writes without ever blocking).
// Throws accel::Error when the system is out of descriptors.
Pipe make_pipe(int flags = 0);

}  // namespace accel::launch
