#pragma once
// Work pulled, not split: the items of a job handed out in small groups as ranks ask for them,
// so a rank that finishes early takes more instead of waiting for a slower one. Every rank
// claims from one atomic counter in the job's store (the c10d store each rank already joined at
// rendezvous, so it works across machines); claiming costs one round trip to rank 0's store and
// no collective. Our addition: accelerate and torchrun offer only the static split.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace accel {

// Items [begin, end) of the input.
struct IndexRange {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const { return end - begin; }
  bool operator==(const IndexRange& other) const { return begin == other.begin && end == other.end; }
};

class WorkQueue {
 public:
  // Adds `amount` to the shared counter and returns its new value (c10d Store::add's contract).
  using Counter = std::function<std::int64_t(std::int64_t amount)>;

  // `total` items handed out `group_size` at a time (the last group may be shorter) through
  // `counter`, which every rank of the job must share. UsageError for group_size 0.
  WorkQueue(std::size_t total, std::size_t group_size, Counter counter);

  // The next group this rank claimed, in claim order across the job; nullopt once every item has
  // been handed out (to this rank or another). Each item goes to exactly one rank.
  std::optional<IndexRange> next();

  std::size_t total() const { return total_; }
  std::size_t group_size() const { return group_size_; }
  // Items this rank claimed so far.
  std::size_t claimed() const { return claimed_; }

 private:
  std::size_t total_;
  std::size_t group_size_;
  Counter counter_;
  std::size_t claimed_ = 0;
  bool exhausted_ = false;
};

// A counter local to this process (a job of one, or tests).
WorkQueue::Counter local_counter();

// Messages from any rank to the main process through the job's store, e.g. results that rank 0
// writes to one file as they finish, wherever they were computed (across machines too). post()
// costs two round trips to the store; nothing waits for the main process to take them.
class Mailbox {
 public:
  // Where the messages are kept: a c10d store behind PartialState::mailbox(), a local queue in a
  // job of one.
  struct Backend {
    virtual ~Backend() = default;
    virtual std::int64_t add(const std::string& key, std::int64_t amount) = 0;
    virtual void set(const std::string& key, const std::string& value) = 0;
    virtual std::string get(const std::string& key) = 0;  // waits until the key is set
    virtual void erase(const std::string& key) = 0;
  };
  Mailbox(std::shared_ptr<Backend> backend, std::string name);

  void post(const std::string& message);
  // Every message posted since the last take(), in the order they were numbered (post order
  // within a rank). Call from one process only (the main one).
  std::vector<std::string> take();

 private:
  std::shared_ptr<Backend> backend_;
  std::string name_;
  std::int64_t taken_ = 0;
};

// A backend within this process only (a job of one, or tests).
std::shared_ptr<Mailbox::Backend> local_mailbox_backend();

}  // namespace accel
