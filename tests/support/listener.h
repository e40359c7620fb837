#pragma once
// A TCP socket listening on 127.0.0.1, for tests that need a port something else holds.
#include <cstdint>

namespace accel::test {

class LoopbackListener {
 public:
  // Listens on `port` (0: a free one the kernel picks). `reuse_address` sets SO_REUSEADDR, for a
  // port the code under test also holds bound but not listening. Throws std::runtime_error naming
  // the port and the reason when it cannot listen.
  explicit LoopbackListener(std::uint16_t port = 0, bool reuse_address = false);
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace accel::test
