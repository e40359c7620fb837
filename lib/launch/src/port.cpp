#include "accel/launch/port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "accel/core/error.h"
#include "fd.h"

namespace accel::launch {
namespace {

Fd reusable_socket() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error(std::string("cannot create a TCP socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return fd;
}

sockaddr_in any_address(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(static_cast<uint16_t>(port));
  return address;
}

}  // namespace

PortReservation PortReservation::any_free() {
  Fd fd = reusable_socket();
  sockaddr_in address = any_address(0);
  socklen_t length = sizeof address;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw Error(std::string("cannot find a free TCP port for the rendezvous: ") + std::strerror(errno));
  }
  const int port = ntohs(address.sin_port);
  return PortReservation(fd.release(), port);
}

std::optional<PortReservation> PortReservation::at(int port) {
  Fd fd = reusable_socket();
  sockaddr_in address = any_address(port);
  if (port <= 0 || port > 65535 || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return std::nullopt;
  }
  return PortReservation(fd.release(), port);
}

PortReservation::~PortReservation() {
  if (fd_ >= 0) ::close(fd_);
}

PortReservation::PortReservation(PortReservation&& other) noexcept : fd_(other.fd_), port_(other.port_) {
  other.fd_ = -1;
}

void require_port_free(const std::string& flag, const std::string& address, int port) {
  // With SO_REUSEADDR, Linux refuses the bind exactly when another socket listens on the port
  // (or holds it without SO_REUSEADDR): what would stop the workers' store. A connection in
  // TIME_WAIT does not. The check never listens itself, so peers on other machines that already
  // try to connect cannot land on it.
  Fd fd = reusable_socket();
  sockaddr_in any = any_address(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    const int error = errno;
    throw UsageError(flag + " " + std::to_string(port) + ": " + address + ":" + std::to_string(port) +
                     " is not available (" + std::strerror(error) +
                     "); choose another port or leave " + flag + " out to get a free one");
  }
}

}  // namespace accel::launch
