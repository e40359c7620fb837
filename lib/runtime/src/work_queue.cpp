#include "accel/runtime/work_queue.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "accel/core/error.h"

namespace accel {

WorkQueue::WorkQueue(std::size_t total, std::size_t group_size, Counter counter)
    : total_(total), group_size_(group_size), counter_(std::move(counter)) {
  if (group_size_ == 0) throw UsageError("distribute: group_size must be at least 1, got 0");
}

std::optional<IndexRange> WorkQueue::next() {
  if (exhausted_ || total_ == 0) return std::nullopt;
  // The counter's new value ends this rank's claim: [value - group, value), clipped to the input.
  const auto end = static_cast<std::size_t>(counter_(static_cast<std::int64_t>(group_size_)));
  const auto begin = end - group_size_;
  if (begin >= total_) {
    exhausted_ = true;  // every later claim would be past the end too: ask the store no more
    return std::nullopt;
  }
  const IndexRange range{begin, end < total_ ? end : total_};
  claimed_ += range.size();
  return range;
}

WorkQueue::Counter local_counter() {
  return [value = std::make_shared<std::int64_t>(0)](std::int64_t amount) { return *value += amount; };
}

Mailbox::Mailbox(std::shared_ptr<Backend> backend, std::string name)
    : backend_(std::move(backend)), name_(std::move(name)) {}

void Mailbox::post(const std::string& message) {
  const auto number = backend_->add(name_ + "/posted", 1) - 1;
  backend_->set(name_ + "/" + std::to_string(number), message);
}

std::vector<std::string> Mailbox::take() {
  const auto posted = backend_->add(name_ + "/posted", 0);
  std::vector<std::string> out;
  for (; taken_ < posted; ++taken_) {
    // A number is handed out before its message is set: get() waits the few microseconds between.
    const auto key = name_ + "/" + std::to_string(taken_);
    out.push_back(backend_->get(key));
    backend_->erase(key);
  }
  return out;
}

namespace {

class LocalMailbox : public Mailbox::Backend {
 public:
  std::int64_t add(const std::string& key, std::int64_t amount) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return counters_[key] += amount;
  }
  void set(const std::string& key, const std::string& value) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    values_[key] = value;
  }
  std::string get(const std::string& key) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return values_.at(key);
  }
  void erase(const std::string& key) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    values_.erase(key);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::int64_t> counters_;
  std::map<std::string, std::string> values_;
};

}  // namespace

std::shared_ptr<Mailbox::Backend> local_mailbox_backend() { return std::make_shared<LocalMailbox>(); }

}  // namespace accel
