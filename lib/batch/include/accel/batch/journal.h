#pragma once
// Nothing lost: results are journaled as they finish, a rerun of the same command continues
// where a crash, kill -9 or pre-emption stopped it, and the output file appears once, complete,
// in input order.
//
// Beside the output file OUT lives the directory OUT.journal/ while a run is unfinished:
//   fingerprint.json   what the results depend on (the input's size and hash, the options)
//   rank-<r>.jsonl     one line per finished entry, appended by rank r: {"index": i, "output": <output line>}
// Each rank appends to its own part, so no two processes ever write one file and no process
// waits for another: a line is handed to the kernel with one write() as soon as its request
// finishes, so it survives kill -9 of any process, and the part is fsync()ed at most every
// `sync_interval` (and when closed), which bounds what a power loss can take. A line cut short
// by a kill is ignored when read, and sealed with a newline when a writer reopens the part.
// The parts need a file system every rank can write (one machine, or a shared one); ranks on
// machines without one hand their results to the main process, which appends them to its part.
//
// The flow: the main process calls prepare_output() before any model work (it checks the path,
// refuses or resumes, and says which entries are left); the engine gives the remaining entries
// to the ranks, each of which appends through a JournalWriter; when every writer is closed,
// the main process calls finish_output(), which writes OUT atomically and removes OUT.journal/.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "accel/batch/output.h"
#include "accel/batch/request.h"
#include "accel/core/files.h"

namespace accel::batch {

// What a run's results depend on. Two runs with equal fingerprints produce the same lines, so
// one may finish what the other started. `options` holds every setting that changes a result
// (the model and its checkpoint's identity, dtype, default max_tokens, temperature, top_p,
// top_k, seed, ...) as text; settings that do not (batch size, number of ranks, schedule) stay
// out, so a rerun may change them.
struct Fingerprint {
  std::uint64_t input_size = 0;
  std::uint64_t input_hash = 0;
  std::size_t entries = 0;
  std::map<std::string, std::string> options;
};
Fingerprint fingerprint_of(const BatchInput& input, std::map<std::string, std::string> options);

// 16 hex digits that name the fingerprint: a good OutputContext::run_tag.
std::string run_tag(const Fingerprint& fingerprint);

// The journal directory of an output file: "<output>.journal".
std::string journal_directory(const std::string& output_path);

enum class ExistingOutput {
  kRefuse,     // an existing output file, or the journal of a different run, is refused
  kOverwrite,  // --overwrite: the journal of a different run is discarded, and an existing output
               // file is replaced when this run finishes (it stays intact until then)
};

// Where a run starts: which entries already have their output line.
struct ResumeState {
  std::string journal_dir;
  bool resumed = false;             // results of an earlier run of the same command were found
  std::vector<bool> done;           // per entry: its line is known (journaled, or a Refusal of the reader)
  std::size_t journaled = 0;        // entries whose line is in the journal
  std::vector<std::string> notes;   // what was found and decided, for the user

  // The Requests still to serve, as indices into the input's entries, in input order.
  std::vector<std::size_t> remaining(const BatchInput& input) const;
};

// The main process, before any model work: checks that the output file's directory exists and
// is writable, then resumes the journal of a run with an equal fingerprint (whatever
// `existing` says: its results are the ones this run would produce), or starts a new journal.
// Throws accel::UsageError naming the file and the flag that would be accepted when an output
// file exists (kRefuse), when the journal holds a different run's results (kRefuse), or when the
// directory is missing or not writable; accel::FileError when reading or writing fails.
ResumeState prepare_output(const std::string& output_path, const BatchInput& input, const Fingerprint& fingerprint,
                           ExistingOutput existing);

struct JournalOptions {
  std::chrono::milliseconds sync_interval{1000};  // fsync at most this often (0: after every line)
};

// Appends finished entries to <output>.journal/rank-<rank>.jsonl. Thread-safe. Opening needs
// the directory prepare_output() made; every failure throws accel::FileError naming the part.
class JournalWriter {
 public:
  JournalWriter(const std::string& output_path, int rank, JournalOptions options = {});
  ~JournalWriter();  // fsyncs what was appended (errors are not reported: call close() to see them)
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Appends the output line (format_completion or format_refusal, no newline) of entry `index`.
  void append(std::size_t index, const std::string& output_line);
  // fsyncs and closes the part; later appends throw.
  void close();
  const std::string& path() const { return path_; }

 private:
  void sync_locked();

  std::string path_;
  JournalOptions options_;
  files::Fd fd_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_sync_;
  bool unsynced_ = false;
};

struct OutputSummary {
  std::size_t lines = 0;      // every entry's line, once
  std::size_t completed = 0;  // lines with a response body
  std::size_t refused = 0;    // error lines
};

// The main process, after every JournalWriter was closed: writes the output file (every entry's
// line exactly once, in input order: its journaled line, or the Refusal's error line) through
// a PendingFile, then removes the journal. Throws accel::Error naming the custom_ids that have
// no result (the journal is kept: rerunning the command serves them).
OutputSummary finish_output(const std::string& output_path, const BatchInput& input, const OutputContext& context);

}  // namespace accel::batch
