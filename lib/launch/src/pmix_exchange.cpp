// PMIx without its headers or a link: the handful of declarations below follow the published
// PMIx standard (types and constants unchanged since PMIx v2), and the functions are looked up
// with dlsym in the library the MPI runtime ships.
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>

#include "accel/core/error.h"
#include "fd.h"
#include "mpi_exchange.h"
#include "status.h"

namespace accel::launch {
namespace {

using PmixStatus = int;
constexpr PmixStatus kPmixSuccess = 0;
constexpr std::uint16_t kPmixBool = 1;
constexpr std::uint16_t kPmixString = 3;
constexpr std::uint8_t kPmixGlobalScope = 3;
constexpr const char* kPmixCollectData = "pmix.collect";

struct PmixProc {
  char nspace[256];
  std::uint32_t rank;
};

// pmix_value_t: a type tag, then a union whose size grew between PMIx versions. Only the members
// used here are named; the padding keeps any copy the library makes of the whole union in bounds.
struct PmixValue {
  std::uint16_t type;
  union {
    bool flag;
    char* string;
    unsigned char padding[512];
  } data;
};

struct PmixInfo {
  char key[512];
  std::uint32_t flags;
  PmixValue value;
};

// The loaded library; unloaded on destruction.
class SharedLibrary {
 public:
  explicit SharedLibrary(const std::string& name) : handle_(::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    if (!handle_) {
      const char* reason = ::dlerror();
      throw UsageError("cannot load the PMIx library " + name + " (" + (reason ? reason : "unknown reason") +
                       "): install Open MPI's PMIx library (Debian: libpmix2) or name it with " +
                       kPmixLibraryVariable);
    }
  }
  ~SharedLibrary() { ::dlclose(handle_); }
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  template <typename Function>
  void bind(Function*& function, const char* name) const {
    void* address = ::dlsym(handle_, name);
    if (!address) throw UsageError("the PMIx library has no " + std::string(name) + "; it needs PMIx 2 or later");
    function = reinterpret_cast<Function*>(address);
  }

 private:
  void* handle_;
};

struct PmixFunctions {
  PmixStatus (*init)(PmixProc*, PmixInfo*, std::size_t) = nullptr;
  PmixStatus (*finalize)(const PmixInfo*, std::size_t) = nullptr;
  PmixStatus (*put)(std::uint8_t, const char*, PmixValue*) = nullptr;
  PmixStatus (*commit)() = nullptr;
  PmixStatus (*fence)(const PmixProc*, std::size_t, const PmixInfo*, std::size_t) = nullptr;
  PmixStatus (*get)(const PmixProc*, const char*, const PmixInfo*, std::size_t, PmixValue**) = nullptr;
  const char* (*error_string)(PmixStatus) = nullptr;

  explicit PmixFunctions(const SharedLibrary& library) {
    library.bind(init, "PMIx_Init");
    library.bind(finalize, "PMIx_Finalize");
    library.bind(put, "PMIx_Put");
    library.bind(commit, "PMIx_Commit");
    library.bind(fence, "PMIx_Fence");
    library.bind(get, "PMIx_Get");
    library.bind(error_string, "PMIx_Error_string");
  }
};

// This process's PMIx client session: PMIx_Init on construction, PMIx_Finalize on destruction.
class PmixSession : public KeyValueService {
 public:
  explicit PmixSession(const PmixFunctions& pmix) : pmix_(pmix) {
    check(pmix_.init(&self_, nullptr, 0), "PMIx_Init (connecting to mpirun's PMIx server)");
  }
  ~PmixSession() override { pmix_.finalize(nullptr, 0); }
  PmixSession(const PmixSession&) = delete;
  PmixSession& operator=(const PmixSession&) = delete;

  int rank() const override { return static_cast<int>(self_.rank); }

  void put(const std::string& key, const std::string& value) override {
    std::string copy = value;
    PmixValue pmix_value{};
    pmix_value.type = kPmixString;
    pmix_value.data.string = copy.data();
    check(pmix_.put(kPmixGlobalScope, key.c_str(), &pmix_value), "PMIx_Put of " + key);
  }

  void fence() override {
    check(pmix_.commit(), "PMIx_Commit");
    PmixInfo collect{};
    std::strncpy(collect.key, kPmixCollectData, sizeof collect.key - 1);
    collect.value.type = kPmixBool;
    collect.value.data.flag = true;
    check(pmix_.fence(nullptr, 0, &collect, 1), "PMIx_Fence (waiting for every launcher of the job)");
  }

  std::string get(int rank, const std::string& key) override {
    PmixProc owner = self_;
    owner.rank = static_cast<std::uint32_t>(rank);
    PmixValue* value = nullptr;
    check(pmix_.get(&owner, key.c_str(), nullptr, 0, &value), "PMIx_Get of " + key + " from rank " + std::to_string(rank));
    // The library allocates the value and its string with malloc (PMIx's PMIX_VALUE_RELEASE frees both).
    const bool text = value && value->type == kPmixString && value->data.string;
    std::string result = text ? value->data.string : "";
    if (text) std::free(value->data.string);
    std::free(value);
    if (!text) throw Error("PMIx_Get of " + key + " from rank " + std::to_string(rank) + " returned no text");
    return result;
  }

 private:
  void check(PmixStatus status, const std::string& step) const {
    if (status == kPmixSuccess) return;
    const char* name = pmix_.error_string(status);
    throw Error(step + " failed: " + (name ? name : "status " + std::to_string(status)));
  }

  const PmixFunctions& pmix_;
  PmixProc self_{};
};

// What the child writes on the pipe: one kind letter, then the address or the message.
constexpr char kReplyAddress = 'A';
constexpr char kReplyUsage = 'U';
constexpr char kReplyError = 'E';

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

[[noreturn]] void exchange_in_child(const std::string& library_name, int reply_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives a launcher killed meanwhile
  std::string reply;
  try {
    const SharedLibrary library(library_name);
    const PmixFunctions functions(library);
    PmixSession session(functions);
    reply = kReplyAddress + agree_on_main_address(session);
  } catch (const UsageError& error) {
    reply = kReplyUsage + std::string(error.what());
  } catch (const std::exception& error) {
    reply = kReplyError + std::string(error.what());
  }
  write_all(reply_fd, reply);
  ::_exit(0);  // no atexit handlers or static destructors of the launcher in this copy
}

// The exchange's process: SIGKILLed and reaped unless it was waited for.
class ExchangeProcess {
 public:
  explicit ExchangeProcess(pid_t pid) : pid_(pid) {}
  ~ExchangeProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    wait();
  }
  ExchangeProcess(const ExchangeProcess&) = delete;
  ExchangeProcess& operator=(const ExchangeProcess&) = delete;

  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// Everything the child writes until it closes the pipe, or nothing when `deadline` passes first.
std::optional<std::string> read_until_closed(int fd, std::chrono::steady_clock::time_point deadline) {
  std::string text;
  char buffer[512];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd readable{fd, POLLIN, 0};
    const int ready = ::poll(&readable, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
    if (ready <= 0) continue;
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string exchange_through_pmix(const std::string& library, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Pipe reply = make_pipe();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start the PMIx exchange: fork: ") + std::strerror(errno));
  if (pid == 0) {
    reply.read.reset();
    exchange_in_child(library, reply.write.get());
  }
  ExchangeProcess child(pid);
  reply.write.reset();
  const auto text = read_until_closed(reply.read.get(), deadline);
  if (!text) {
    std::ostringstream seconds;
    seconds << static_cast<double>(timeout.count()) / 1000;
    throw Error("PMIx gave no answer within " + seconds.str() +
                " s (--join_timeout): a launcher of this mpirun job never reached the exchange");
  }
  const int status = child.wait();
  if (text->empty()) throw Error("the PMIx exchange process " + describe_wait_status(status) + " without an answer");
  const std::string message = text->substr(1);
  if (text->front() == kReplyAddress) return message;
  if (text->front() == kReplyUsage) throw UsageError(message);
  throw Error(message);
}

}  // namespace accel::launch
