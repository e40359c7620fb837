// rendezvous: a minimal store handshake over the launcher's contract. Rank 0 listens on
// MASTER_PORT and collects one byte string from every other rank, then prints
// "rank 0 met <WORLD_SIZE - 1> peers"; the others connect to MASTER_ADDR:MASTER_PORT (retrying
// for up to 10 s while rank 0 starts) and send their rank. Exits 1 with a reason on failure.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

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
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::atoi(port_text)));
  if (rank == 0) {
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(server, 64) != 0) {
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
  if (::inet_pton(AF_INET, addr, &address.sin_addr) != 1) {
    std::fprintf(stderr, "rendezvous: MASTER_ADDR %s is not an IPv4 address\n", addr);
    return 1;
  }
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      const std::string text = std::to_string(rank);
      (void)!::write(client, text.data(), text.size());
      ::close(client);
      return 0;
    }
    ::close(client);
    ::usleep(10000);
  }
  std::fprintf(stderr, "rendezvous: rank %d could not reach %s:%s\n", rank, addr, port_text);
  return 1;
}
