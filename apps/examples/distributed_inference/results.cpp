#include "results.h"

#include <ostream>
#include <variant>

#include "model.h"

namespace accel::examples {

struct Results::Impl {
  std::string output_file;
  const batch::BatchInput* input = nullptr;
  batch::ResumeState resume;
  std::unique_ptr<batch::JournalWriter> journal;  // with an output file
  std::map<std::uint64_t, ResultLine> printed;    // without one
};

Results::Results(const ResultsOptions& options, const batch::BatchInput& input) : impl_(std::make_unique<Impl>()) {
  impl_->output_file = options.output_file;
  impl_->input = &input;
  if (options.output_file.empty()) {
    impl_->resume.done.assign(input.entries.size(), false);
    return;
  }
  impl_->resume = batch::prepare_output(
      options.output_file, input, options.fingerprint,
      options.overwrite ? batch::ExistingOutput::kOverwrite : batch::ExistingOutput::kRefuse);
  // Every result reaches the main process, which appends it to its own part of the journal.
  impl_->journal = std::make_unique<batch::JournalWriter>(options.output_file, 0);
}

Results::~Results() = default;

const std::vector<std::string>& Results::notes() const { return impl_->resume.notes; }

std::vector<std::uint64_t> Results::remaining() const {
  const auto indices = impl_->resume.remaining(*impl_->input);
  return {indices.begin(), indices.end()};
}

void Results::add(ResultLine result) {
  if (impl_->journal) impl_->journal->append(result.index, result.line);
  else impl_->printed[result.index] = std::move(result);
}

void Results::finish(const batch::OutputContext& context, std::ostream& printout) {
  if (impl_->journal) {
    impl_->journal->close();
    const auto summary = batch::finish_output(impl_->output_file, *impl_->input, context);
    printout << "distributed_inference: wrote " << impl_->output_file << ": " << summary.lines << " lines ("
             << summary.completed << " completions, " << summary.refused << " errors)\n";
    return;
  }
  for (std::size_t i = 0; i < impl_->input->entries.size(); ++i) {
    const auto& entry = impl_->input->entries[i];
    if (const auto* refusal = std::get_if<batch::Refusal>(&entry)) {
      printout << "[" << i << "] error: " << one_line(refusal->message) << "\n";
      continue;
    }
    const auto found = impl_->printed.find(i);
    if (found == impl_->printed.end()) continue;
    printout << "[" << i << "] " << one_line(std::get<batch::Request>(entry).prompt)
             << (found->second.ok ? " -> " : " -> error: ") << one_line(found->second.text) << "\n";
  }
}

}  // namespace accel::examples
