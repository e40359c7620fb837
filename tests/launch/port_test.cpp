#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <stdexcept>
#include <utility>

#include "accel/core/error.h"
#include "accel/launch/port.h"
#include "support/listener.h"

using accel::launch::PortReservation;
using accel::launch::require_port_free;

TEST_CASE("launch port: reservations held at the same time never share a port") {
  std::vector<PortReservation> held;
  std::set<int> ports;
  for (int i = 0; i < 20; ++i) {
    held.push_back(PortReservation::any_free());
    ports.insert(held.back().port());
  }
  CHECK(ports.size() == 20);
  // A held (bound, not listening) port is still usable by the workers' store.
  CHECK_NOTHROW(require_port_free("--main_process_port", "127.0.0.1", held.front().port()));
}

TEST_CASE("launch port: a given port is reserved next to others, and refused while something listens on it") {
  const auto [first, next] = [] {
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto low = PortReservation::any_free();
      if (auto high = PortReservation::at(low.port() + 1)) return std::pair{std::move(low), std::move(*high)};
    }
    throw std::runtime_error("no two consecutive free ports in 100 tries");
  }();
  CHECK(next.port() == first.port() + 1);
  CHECK_NOTHROW(require_port_free("--main_process_port", "127.0.0.1", next.port()));  // still usable by a server

  const accel::test::LoopbackListener server;
  CHECK_FALSE(PortReservation::at(server.port()));
  CHECK_FALSE(PortReservation::at(0));
  CHECK_FALSE(PortReservation::at(65536));
}

TEST_CASE("launch port: a port something listens on is refused naming the address") {
  const accel::test::LoopbackListener server;
  const std::string port = std::to_string(server.port());
  try {
    require_port_free("--main_process_port", "127.0.0.1", server.port());
    FAIL("a taken port was accepted");
  } catch (const accel::UsageError& e) {
    CHECK(std::string(e.what()) == "--main_process_port " + port + ": 127.0.0.1:" + port +
                                       " is not available (Address already in use); choose another port or "
                                       "leave --main_process_port out to get a free one");
  }
}
