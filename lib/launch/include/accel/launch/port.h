#pragma once
// Rendezvous port choice on this machine.
#include <optional>
#include <string>

namespace accel::launch {

// A TCP port bound (not listening) on all IPv4 addresses with SO_REUSEADDR. While it is held the
// kernel never hands the port to another bind(port 0), so two jobs started at once on one machine
// cannot pick the same free port; the workers can still listen on it because c10d's store (like
// most servers) sets SO_REUSEADDR, which Linux allows next to a bound socket that does not listen.
class PortReservation {
 public:
  // Binds a free port chosen by the kernel. Throws accel::Error when no socket can be bound.
  static PortReservation any_free();
  // Binds `port` itself; empty when it is taken (something listens on it, or holds it without
  // SO_REUSEADDR). For a port that must sit next to another one, such as the control plane's.
  static std::optional<PortReservation> at(int port);
  ~PortReservation();
  PortReservation(PortReservation&& other) noexcept;
  PortReservation& operator=(PortReservation&&) = delete;
  PortReservation(const PortReservation&) = delete;

  int port() const { return port_; }

 private:
  PortReservation(int fd, int port) : fd_(fd), port_(port) {}
  int fd_;
  int port_;
};

// Throws accel::UsageError naming `address`:`port` and `flag` when something already listens on
// the port here (a port in TIME_WAIT is free: the workers' store can reuse it). Never listens.
void require_port_free(const std::string& flag, const std::string& address, int port);

}  // namespace accel::launch
