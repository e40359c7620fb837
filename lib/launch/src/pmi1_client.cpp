// The client side of PMI-1's wire protocol (MPICH's "simple" PMI, as Hydra serves it on PMI_FD):
// one request line, one answer line of space-separated name=value fields starting with cmd=.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "mpi_exchange.h"

namespace accel::launch {
namespace {

using Fields = std::map<std::string, std::string>;

Fields fields_of(const std::string& line) {
  Fields fields;
  for (const auto& word : text::split(line, ' ')) {
    const auto equals = word.find('=');
    if (equals != std::string::npos) fields[word.substr(0, equals)] = word.substr(equals + 1);
  }
  return fields;
}

// send() so that a server gone away is an error here rather than a SIGPIPE; write() for a pipe.
void send_line(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot write to PMI_FD " + std::to_string(fd) + ": " + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
}

std::size_t field_size(const Fields& fields, const char* name) {
  const auto found = fields.find(name);
  const auto value = found == fields.end() ? std::nullopt : text::parse_integer(found->second);
  return value && *value > 0 ? static_cast<std::size_t>(*value) : 0;
}

}  // namespace

Pmi1Client::Pmi1Client(int fd, int rank, std::chrono::steady_clock::time_point deadline)
    : fd_(fd), rank_(rank), deadline_(deadline) {
  request("cmd=init pmi_version=1 pmi_subversion=1", "response_to_init");
  const Fields maxes = fields_of(request("cmd=get_maxes", "maxes"));
  max_key_ = field_size(maxes, "keylen_max");
  max_value_ = field_size(maxes, "vallen_max");
  kvs_name_ = fields_of(request("cmd=get_my_kvsname", "my_kvsname"))["kvsname"];
  if (kvs_name_.empty()) throw Error("the PMI server named no key-value space (cmd=my_kvsname without kvsname)");
}

Pmi1Client::~Pmi1Client() {
  try {
    request("cmd=finalize", "finalize_ack");
  } catch (const Error&) {
    // The exchange already failed and says why; the server is gone or silent.
  }
}

void Pmi1Client::put(const std::string& key, const std::string& value) {
  const std::string global_key = key + "-" + std::to_string(rank_);  // one space for all ranks
  if ((max_key_ && global_key.size() > max_key_) || (max_value_ && value.size() > max_value_)) {
    throw Error("the PMI server takes keys of at most " + std::to_string(max_key_) + " and values of at most " +
                std::to_string(max_value_) + " bytes; " + global_key + "=" + value + " is longer");
  }
  request("cmd=put kvsname=" + kvs_name_ + " key=" + global_key + " value=" + value, "put_result");
}

void Pmi1Client::fence() { request("cmd=barrier_in", "barrier_out"); }

std::string Pmi1Client::get(int rank, const std::string& key) {
  const std::string global_key = key + "-" + std::to_string(rank);
  Fields answer = fields_of(request("cmd=get kvsname=" + kvs_name_ + " key=" + global_key, "get_result"));
  if (!answer.count("value")) throw Error("cmd=get of " + global_key + " was answered without a value");
  return answer["value"];
}

std::string Pmi1Client::request(const std::string& command, const std::string& expected_reply) {
  send_line(fd_, command + "\n");
  std::size_t newline;
  while ((newline = pending_.find('\n')) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now()).count();
    pollfd readable{fd_, POLLIN, 0};
    const int ready = left > 0 ? ::poll(&readable, 1, static_cast<int>(std::min<long long>(left, 1000))) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw Error("poll on PMI_FD: " + std::string(std::strerror(errno)));
    if (left <= 0) {
      throw Error("no answer to " + command + " before --join_timeout ran out: a launcher of this mpirun job never "
                  "reached the exchange");
    }
    if (ready == 0) continue;
    char buffer[512];
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("the PMI server closed PMI_FD before answering " + command);
    pending_.append(buffer, static_cast<std::size_t>(n));
  }
  const std::string line = pending_.substr(0, newline);
  pending_.erase(0, newline + 1);
  const Fields answer = fields_of(line);
  const auto cmd = answer.find("cmd");
  if (cmd == answer.end() || cmd->second != expected_reply) {
    throw Error("the PMI server answered " + command + " with '" + line + "'; expected cmd=" + expected_reply);
  }
  if (const auto rc = answer.find("rc"); rc != answer.end() && rc->second != "0") {
    const auto message = answer.find("msg");
    throw Error("the PMI server refused " + command + " (rc=" + rc->second +
                (message != answer.end() ? ", " + message->second : std::string()) + ")");
  }
  return line;
}

}  // namespace accel::launch
