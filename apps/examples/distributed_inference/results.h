#pragma once
// Where the main process puts each request's output line as it arrives: the output file's
// journal (accel::batch), so that a rerun continues after a crash and the file appears complete
// at the end; without an output file, memory, printed in input order at the end.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "accel/batch/journal.h"
#include "accel/batch/request.h"

namespace accel::examples {

struct ResultLine {
  std::uint64_t index = 0;  // the entry's index in the input
  std::string line;         // its output line
  std::string text;         // the completion, or the error message
  std::int64_t new_tokens = 0;
  bool ok = true;
};

struct ResultsOptions {
  std::string output_file;  // empty: print the results
  bool overwrite = false;
  // The input and every setting that changes a result: a rerun continues an earlier run's
  // output only when they are equal.
  batch::Fingerprint fingerprint;
};

class Results {
 public:
  // Checks the output path before any model work, and resumes what an earlier run of the same
  // input and settings finished. Throws accel::UsageError / FileError naming the path and flag.
  Results(const ResultsOptions& options, const batch::BatchInput& input);
  ~Results();

  // What resuming found and decided, for the user.
  const std::vector<std::string>& notes() const;
  // The requests still to serve, as indices into the input, in input order.
  std::vector<std::uint64_t> remaining() const;
  // Journals the line (one write(): a kill after this keeps it), or keeps it for printing.
  void add(ResultLine result);
  // Writes the output file (every entry once, in input order) and removes the journal; without
  // an output file, prints every result in input order.
  void finish(const batch::OutputContext& context, std::ostream& printout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace accel::examples
