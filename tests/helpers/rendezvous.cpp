// rendezvous: a minimal store handshake over the launcher's contract. Rank 0 listens on
// MASTER_PORT (IPv6 and IPv4 alike, as c10d's store does) and collects one byte string from every
// other rank, then prints "rank 0 met <WORLD_SIZE - 1> peers"; the others connect to
// MASTER_ADDR:MASTER_PORT (a name, an IPv4 or an IPv6 address; retrying for up to 10 s while
// rank 0 starts) and send their rank. Exits 1 with a reason on failure.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

// A listening socket on every address: IPv6 with IPv4-mapped addresses, or IPv4 alone on a
// machine without IPv6. -1 on failure.
int listen_everywhere(int port) {
  int server = ::socket(AF_INET6, SOCK_STREAM, 0);
  const int one = 1, zero = 0;
  if (server >= 0) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_any;
    address.sin6_port = htons(static_cast<uint16_t>(port));
    ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(server, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return server;
    ::close(server);
  }
  server = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return ::bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 ? server : -1;
}

bool send_rank(const addrinfo& peer, const std::string& rank) {
  const int client = ::socket(peer.ai_family, peer.ai_socktype, peer.ai_protocol);
  const bool sent = client >= 0 && ::connect(client, peer.ai_addr, peer.ai_addrlen) == 0 &&
                    ::write(client, rank.data(), rank.size()) == static_cast<ssize_t>(rank.size());
  if (client >= 0) ::close(client);
  return sent;
}

}  // namespace

int main() {
  const char* rank_text = std::getenv("RANK");
  const char* world_text = std::getenv("WORLD_SIZE");
  const char* addr = std::getenv("MASTER_ADDR");
  const char* port_text = std::getenv("MASTER_PORT");
  if (!rank_text || !world_text || !addr || !port_text) {
    std::fprintf(stderr, "rendezvous: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT must be set\n");
    return 1;
  }
  const int rank = std::atoi(rank_text), world = std::atoi(world_text);
  if (rank == 0) {
    const int server = listen_everywhere(std::atoi(port_text));
    if (server < 0 || ::listen(server, 64) != 0) {
      std::perror("rendezvous: rank 0 cannot listen");
      return 1;
    }
    for (int i = 1; i < world; ++i) {
      const int peer = ::accept(server, nullptr, nullptr);
      char buffer[16] = {};
      if (peer < 0 || ::read(peer, buffer, sizeof buffer - 1) <= 0) return 1;
      ::close(peer);
    }
    std::printf("rank 0 met %d peers\n", world - 1);
    return 0;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = ::getaddrinfo(addr, port_text, &hints, &found); error != 0) {
    std::fprintf(stderr, "rendezvous: MASTER_ADDR %s: %s\n", addr, ::gai_strerror(error));
    return 1;
  }
  bool sent = false;
  for (int attempt = 0; attempt < 1000 && !sent; ++attempt) {
    sent = send_rank(*found, rank_text);
    if (!sent) ::usleep(10000);
  }
  ::freeaddrinfo(found);  // LeakSanitizer checks this helper too (scripts/sanitize.sh)
  if (sent) return 0;
  std::fprintf(stderr, "rendezvous: rank %d could not reach %s:%s\n", rank, addr, port_text);
  return 1;
}
