#include "accel/batch/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "hash.h"

namespace accel::batch {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kJournalFormat = 1;
constexpr const char* kFingerprintFile = "fingerprint.json";

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string part_path(const std::string& journal_dir, int rank) {
  return journal_dir + "/rank-" + std::to_string(rank) + ".jsonl";
}

// The journal's parts, in rank order.
std::vector<std::string> list_parts(const std::string& journal_dir) {
  std::vector<std::pair<long, std::string>> parts;
  DIR* dir = ::opendir(journal_dir.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return {};
    throw FileError(journal_dir, "cannot list the results journal", errno);
  }
  while (const dirent* entry = ::readdir(dir)) {
    long rank = -1;
    int consumed = 0;
    const std::string name = entry->d_name;
    if (std::sscanf(name.c_str(), "rank-%ld.jsonl%n", &rank, &consumed) == 1 && consumed == static_cast<int>(name.size()) &&
        rank >= 0)
      parts.emplace_back(rank, journal_dir + "/" + name);
  }
  ::closedir(dir);
  std::sort(parts.begin(), parts.end());
  std::vector<std::string> paths;
  for (auto& part : parts) paths.push_back(std::move(part.second));
  return paths;
}

void remove_journal_files(const std::string& journal_dir) {
  for (const auto& part : list_parts(journal_dir))
    if (::unlink(part.c_str()) != 0 && errno != ENOENT) throw FileError(part, "cannot remove", errno);
  const std::string fingerprint = journal_dir + "/" + kFingerprintFile;
  if (::unlink(fingerprint.c_str()) != 0 && errno != ENOENT) throw FileError(fingerprint, "cannot remove", errno);
}

Json fingerprint_json(const Fingerprint& fingerprint) {
  Json options = Json::object();
  for (const auto& [key, value] : fingerprint.options) options[key] = value;
  return {{"format", kJournalFormat},
          {"input_size", fingerprint.input_size},
          {"input_hash", detail::hex(fingerprint.input_hash)},
          {"entries", fingerprint.entries},
          {"options", options}};
}

// What differs between the journal's fingerprint and this run's, in words; empty when equal.
std::string differences(const Json& then, const Json& now) {
  std::vector<std::string> found;
  if (then.value("format", 0) != kJournalFormat) found.push_back("it was written by another version of this program");
  if (then.value("input_size", Json()) != now["input_size"] || then.value("input_hash", Json()) != now["input_hash"]) {
    const auto plain = [](const Json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); };
    found.push_back("the input differs (then " + plain(then.value("input_size", Json())) + " bytes, hash " +
                    plain(then.value("input_hash", Json())) + "; now " + plain(now["input_size"]) + " bytes, hash " +
                    plain(now["input_hash"]) + ")");
  }
  const Json then_options = then.value("options", Json::object());
  std::map<std::string, std::pair<std::string, std::string>> options;
  for (const auto& [key, value] : then_options.items()) options[key].first = value.dump();
  for (const auto& [key, value] : now["options"].items()) options[key].second = value.dump();
  for (const auto& [key, values] : options) {
    if (values.first == values.second) continue;
    found.push_back(key + " was " + (values.first.empty() ? "unset" : values.first) + ", now " +
                    (values.second.empty() ? "unset" : values.second));
  }
  std::string text;
  for (const auto& item : found) text += (text.empty() ? "" : "; ") + item;
  return text;
}

// The custom_id an entry's output line carries: null for a Refusal without one.
Json custom_id_json(const Entry& entry) {
  const std::string& id = std::visit([](const auto& e) -> const std::string& { return e.custom_id; }, entry);
  return id.empty() ? Json(nullptr) : Json(id);
}

struct JournalContents {
  std::vector<std::string> lines;  // per entry: its output line, empty when none was journaled
  std::vector<bool> failed;        // per entry: its journaled line is an error line
  std::size_t journaled = 0;
  std::size_t partial = 0;     // parts whose last line was cut short
  std::size_t unreadable = 0;  // complete lines that are not journal records (sealed cut lines)
};

void read_record(const std::string& text, const std::string& where, const BatchInput& input, JournalContents& contents) {
  Json record = text::json_nesting_problem(text) ? Json() : Json::parse(text, nullptr, /*allow_exceptions=*/false);
  const Json* index = record.is_object() && record.contains("index") ? &record["index"] : nullptr;
  if (index == nullptr || !index->is_number_unsigned() || !record.contains("output") || !record["output"].is_object()) {
    ++contents.unreadable;
    return;
  }
  const auto i = index->get<std::size_t>();
  const std::string foreign = where + ": a result that does not belong to " + input.source;
  if (i >= input.entries.size())
    throw UsageError(foreign + " (entry " + std::to_string(i) + " of " + std::to_string(input.entries.size()) + ")");
  if (record["output"].value("custom_id", Json()) != custom_id_json(input.entries[i]))
    throw UsageError(foreign + " (entry " + std::to_string(i) + " has custom_id " + custom_id_json(input.entries[i]).dump() +
                     ", the journal " + record["output"].value("custom_id", Json()).dump() + ")");
  if (!contents.lines[i].empty()) return;  // served twice (work handed out again): the first stands
  contents.lines[i] = record["output"].dump(-1, ' ', false, Json::error_handler_t::replace);
  contents.failed[i] = !record["output"].value("error", Json()).is_null();
  ++contents.journaled;
}

JournalContents read_journal(const std::string& journal_dir, const BatchInput& input) {
  JournalContents contents;
  contents.lines.resize(input.entries.size());
  contents.failed.resize(input.entries.size());
  for (const auto& part : list_parts(journal_dir)) {
    const std::string text = files::read_whole(part, "cannot read the results journal");
    std::size_t number = 0;
    for (std::size_t start = 0; start < text.size();) {
      const auto end = text.find('\n', start);
      if (end == std::string::npos) {
        ++contents.partial;  // being written when the process stopped
        break;
      }
      ++number;
      read_record(text.substr(start, end - start), part + ":" + std::to_string(number), input, contents);
      start = end + 1;
    }
  }
  return contents;
}

void check_output_directory(const std::string& output_path) {
  const std::string dir = directory_of(output_path);
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0)
    throw UsageError(output_path + ": cannot write the output file: the directory " + dir + " does not exist (" +
                     std::strerror(errno) + "); create it or name another output file");
  if (!S_ISDIR(info.st_mode))
    throw UsageError(output_path + ": cannot write the output file: " + dir + " is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw UsageError(output_path + ": cannot write the output file: the directory " + dir + " is not writable (" +
                     std::strerror(errno) + ")");
  if (::stat(output_path.c_str(), &info) == 0 && S_ISDIR(info.st_mode))
    throw UsageError(output_path + " is a directory; name the output file to write");
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

// Whether the journal in `journal_dir` holds this run's results: true to resume it, false when
// there is none (or it was discarded); throws when another run's results are in the way.
bool journal_matches(const std::string& journal_dir, const Json& wanted, ExistingOutput existing) {
  struct stat info {};
  if (::stat(journal_dir.c_str(), &info) != 0) return false;
  if (!S_ISDIR(info.st_mode))
    throw UsageError(journal_dir + " is in the way of the results journal: it is not a directory; move it away");
  const std::string fingerprint_path = journal_dir + "/" + kFingerprintFile;
  const auto recorded = files::read_if_present(fingerprint_path);
  const Json then = recorded ? Json::parse(*recorded, nullptr, false) : Json();
  std::string why;
  if (then.is_object()) {
    why = differences(then, wanted);
    if (why.empty()) return true;
  } else if (!list_parts(journal_dir).empty()) {
    why = fingerprint_path + " is missing or unreadable, so its results cannot be matched to this input";
  }
  if (!why.empty() && existing == ExistingOutput::kRefuse) {
    throw UsageError(journal_dir + "/ holds the results of a different run: " + why +
                     ". Rerun with that run's input and options to continue it, or add --overwrite to discard its "
                     "results and start afresh");
  }
  remove_journal_files(journal_dir);
  return false;
}

}  // namespace

namespace detail {
std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}
}  // namespace detail

Fingerprint fingerprint_of(const BatchInput& input, std::map<std::string, std::string> options) {
  return Fingerprint{input.size, input.content_hash, input.entries.size(), std::move(options)};
}

std::string run_tag(const Fingerprint& fingerprint) { return detail::hex(detail::fnv1a(fingerprint_json(fingerprint).dump())); }

std::string journal_directory(const std::string& output_path) { return output_path + ".journal"; }

std::vector<std::size_t> ResumeState::remaining(const BatchInput& input) const {
  std::vector<std::size_t> indices;
  for (std::size_t i = 0; i < input.entries.size(); ++i)
    if (!done.at(i) && std::holds_alternative<Request>(input.entries[i])) indices.push_back(i);
  return indices;
}

ResumeState prepare_output(const std::string& output_path, const BatchInput& input, const Fingerprint& fingerprint,
                           ExistingOutput existing) {
  check_output_directory(output_path);
  ResumeState state;
  state.journal_dir = journal_directory(output_path);
  const Json wanted = fingerprint_json(fingerprint);
  state.resumed = journal_matches(state.journal_dir, wanted, existing);
  const bool output_exists = exists(output_path);
  if (!state.resumed) {
    if (output_exists && existing == ExistingOutput::kRefuse)
      throw UsageError(output_path + " already exists; add --overwrite to replace it when this run finishes, or name "
                                     "another output file");
    if (output_exists) state.notes.push_back(output_path + " exists: it will be replaced when this run finishes");
    try {
      files::make_directories(state.journal_dir);
      files::replace_atomically(state.journal_dir + "/" + kFingerprintFile, wanted.dump(2) + "\n");
    } catch (const FileError& e) {
      throw UsageError(output_path + ": cannot write the output file: " + e.what());
    }
  }
  const JournalContents journal = read_journal(state.journal_dir, input);
  state.journaled = journal.journaled;
  state.done.resize(input.entries.size());
  for (std::size_t i = 0; i < input.entries.size(); ++i)
    state.done[i] = !journal.lines[i].empty() || std::holds_alternative<Refusal>(input.entries[i]);
  if (state.resumed) {
    state.notes.push_back("resuming from " + state.journal_dir + "/: " + std::to_string(journal.journaled) + " of " +
                          std::to_string(input.entries.size()) + " entries already have their result");
  }
  if (journal.partial + journal.unreadable > 0) {
    state.notes.push_back(std::to_string(journal.partial + journal.unreadable) +
                          " journal line(s) cut short when a process stopped were ignored; their requests run again");
  }
  return state;
}

JournalWriter::JournalWriter(const std::string& output_path, int rank, JournalOptions options)
    : path_(part_path(journal_directory(output_path), rank)), options_(options), last_sync_(std::chrono::steady_clock::now()) {
  fd_ = files::Fd(::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666));
  if (!fd_) throw FileError(path_, "cannot open the results journal", errno);
  // A line cut short by a killed writer is sealed, so that the next record starts a line of its own.
  struct stat info {};
  char last = '\n';
  if (::fstat(fd_.get(), &info) != 0) throw FileError(path_, "cannot read the results journal", errno);
  if (info.st_size > 0 && ::pread(fd_.get(), &last, 1, info.st_size - 1) != 1)
    throw FileError(path_, "cannot read the results journal", errno);
  if (last != '\n' && ::write(fd_.get(), "\n", 1) != 1) throw FileError(path_, "cannot append to the results journal", errno);
}

JournalWriter::~JournalWriter() {
  if (fd_ && unsynced_) ::fsync(fd_.get());
}

void JournalWriter::append(std::size_t index, const std::string& output_line) {
  const std::string record = "{\"index\":" + std::to_string(index) + ",\"output\":" + output_line + "}\n";
  const std::lock_guard lock(mutex_);
  if (!fd_) throw Error(path_ + ": the results journal was closed; nothing more can be appended");
  // One write() for the whole record: another process never sees half of it unless this one
  // dies inside the call, and then the reader ignores the cut line.
  for (std::size_t written = 0; written < record.size();) {
    const ssize_t n = ::write(fd_.get(), record.data() + written, record.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw FileError(path_, "cannot append to the results journal", errno);
    written += static_cast<std::size_t>(n);
  }
  unsynced_ = true;
  if (std::chrono::steady_clock::now() - last_sync_ >= options_.sync_interval) sync_locked();
}

void JournalWriter::sync_locked() {
  if (::fsync(fd_.get()) != 0) throw FileError(path_, "cannot flush the results journal", errno);
  unsynced_ = false;
  last_sync_ = std::chrono::steady_clock::now();
}

void JournalWriter::close() {
  const std::lock_guard lock(mutex_);
  if (!fd_) return;
  sync_locked();
  if (::close(fd_.release()) != 0) throw FileError(path_, "cannot write the results journal", errno);
}

OutputSummary finish_output(const std::string& output_path, const BatchInput& input, const OutputContext& context) {
  const std::string journal_dir = journal_directory(output_path);
  const JournalContents journal = read_journal(journal_dir, input);
  OutputSummary summary;
  std::vector<std::string> missing;
  std::string text;
  for (std::size_t i = 0; i < input.entries.size(); ++i) {
    const std::string& journaled = journal.lines[i];
    if (const auto* refusal = std::get_if<Refusal>(&input.entries[i]); journaled.empty() && refusal != nullptr) {
      text += format_refusal(*refusal, i, context) + "\n";
      ++summary.refused;
    } else if (journaled.empty()) {
      missing.push_back(std::get<Request>(input.entries[i]).custom_id);
      continue;
    } else {
      text += journaled + "\n";
      ++(journal.failed[i] ? summary.refused : summary.completed);
    }
    ++summary.lines;
  }
  if (!missing.empty()) {
    std::string ids;
    for (std::size_t i = 0; i < missing.size() && i < 5; ++i) ids += (i == 0 ? "" : ", ") + missing[i];
    if (missing.size() > 5) ids += " and " + std::to_string(missing.size() - 5) + " more";
    throw Error(output_path + " was not written: " + std::to_string(missing.size()) + " of " +
                std::to_string(input.entries.size()) + " requests have no result in " + journal_dir + "/ (" + ids +
                "); rerun the same command to serve them");
  }
  files::PendingFile output(output_path);
  output.write(text);
  output.commit_replacing();
  remove_journal_files(journal_dir);
  ::rmdir(journal_dir.c_str());  // left in place when something else was put in it
  return summary;
}

}  // namespace accel::batch
