#include "mpi_exchange.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>

#include <memory>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "fd.h"

namespace accel::launch {
namespace {

constexpr const char* kPeerAddressKey = "accel-launch-peer-address";
constexpr const char* kMainAddressKey = "accel-launch-main-address";

std::string numeric_host(const sockaddr* address, socklen_t length) {
  char host[NI_MAXHOST] = {};
  if (::getnameinfo(address, length, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return "";
  return host;
}

bool is_loopback(const std::string& address) { return address.rfind("127.", 0) == 0 || address == "::1"; }

// The first address of an interface that is up and not the loopback, IPv4 first.
std::string first_interface_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  const std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> owned(list, ::freeifaddrs);
  for (const int family : {AF_INET, AF_INET6}) {
    for (const ifaddrs* entry = list; entry; entry = entry->ifa_next) {
      if (!entry->ifa_addr || entry->ifa_addr->sa_family != family) continue;
      if (!(entry->ifa_flags & IFF_UP) || (entry->ifa_flags & IFF_LOOPBACK)) continue;
      const socklen_t length = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      if (auto address = numeric_host(entry->ifa_addr, length); !address.empty()) return address;
    }
  }
  return "";
}

}  // namespace

std::string source_address_toward(const std::string& peer) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(peer.c_str(), "9", &hints, &found) != 0) return "";
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
  // Connecting a UDP socket sends nothing: it only asks the kernel for the route and its source.
  const Fd probe(::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe || ::connect(probe.get(), found->ai_addr, found->ai_addrlen) != 0) return "";
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  if (::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&local), &length) != 0) return "";
  return numeric_host(reinterpret_cast<const sockaddr*>(&local), length);
}

std::string primary_address() {
  // Documentation addresses (RFC 5737, RFC 3849): off-host, so the default route answers.
  for (const char* outside : {"198.51.100.1", "2001:db8::1"}) {
    if (auto address = source_address_toward(outside); !address.empty() && !is_loopback(address)) return address;
  }
  if (auto address = first_interface_address(); !address.empty()) return address;
  return "127.0.0.1";
}

std::string agree_on_main_address(KeyValueService& service) {
  if (service.rank() == 1) service.put(kPeerAddressKey, primary_address());
  service.fence();
  if (service.rank() == 0) {
    std::string chosen = source_address_toward(service.get(1, kPeerAddressKey));
    if (chosen.empty()) chosen = primary_address();
    service.put(kMainAddressKey, chosen);
  }
  service.fence();
  return service.get(0, kMainAddressKey);
}

MainAddressFromMpi exchange_main_address(const env::Lookup& lookup, std::chrono::milliseconds timeout) {
  const std::string fallback =
      "; or give every launcher machine 0's address: mpirun -x MASTER_ADDR=<address of the first host> ...";
  std::string service = "PMIx";
  try {
    if (lookup("PMIX_NAMESPACE")) {
      return {exchange_through_pmix(lookup(kPmixLibraryVariable).value_or(kDefaultPmixLibrary), timeout), service};
    }
    service = "PMI-1";
    if (const auto fd_text = lookup("PMI_FD")) {
      const auto fd = text::parse_integer(*fd_text);
      const auto rank = text::parse_integer(lookup("PMI_RANK").value_or(""));
      if (!fd || *fd < 0 || !rank || *rank < 0) {
        throw UsageError("PMI_FD='" + *fd_text + "' and PMI_RANK='" + lookup("PMI_RANK").value_or("") +
                         "' are not a descriptor and a rank");
      }
      Pmi1Client client(static_cast<int>(*fd), static_cast<int>(*rank), std::chrono::steady_clock::now() + timeout);
      return {agree_on_main_address(client), service};
    }
  } catch (const UsageError& error) {
    throw UsageError("cannot learn machine 0's address from mpirun through " + service + ": " + error.what() + fallback);
  } catch (const Error& error) {
    throw Error("cannot learn machine 0's address from mpirun through " + service + ": " + error.what() + fallback);
  }
  throw UsageError("cannot learn machine 0's address from mpirun: it gave this launcher neither a PMIx server "
                   "(PMIX_NAMESPACE) nor a PMI-1 descriptor (PMI_FD)" + fallback);
}

}  // namespace accel::launch
