#include "engine.h"

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <variant>

#include "accel/batch/journal.h"
#include "accel/batch/output.h"
#include "accel/batch/progress.h"
#include "accel/batch/request.h"
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/chat.h"
#include "accel/models/slot_decoder.h"
#include "accel/runtime/partial_state.h"
#include "results.h"

namespace accel::examples {
namespace {

using models::FinishedSequence;
using models::SequenceRequest;

const std::vector<std::string> kDefaultPrompts = {
    "a dog", "a cat", "a chicken", "the quick brown fox", "once upon a time", "distributed inference is",
    "to be or not to be", "the weather today",
};

batch::BatchInput load_input(const EngineOptions& options) {
  if (!options.input_file.empty() && !options.prompts_file.empty())
    throw UsageError("-i/--input_file and --prompts were both given; pass one of them");
  if (!options.input_file.empty() && options.chat)
    throw UsageError("--chat applies to --prompts (or the built-in prompts); a batch file's url says which "
                     "requests are chat requests");
  if (!options.input_file.empty()) return batch::read_batch_file(options.input_file);
  const auto form = options.chat ? batch::PromptForm::kChatMessage : batch::PromptForm::kCompletion;
  if (!options.prompts_file.empty()) return batch::read_prompts_file(options.prompts_file, form);
  std::string text;
  for (const auto& prompt : kDefaultPrompts) text += prompt + "\n";
  return batch::parse_prompts_text(text, "the built-in prompts", form);
}

const batch::Request* request_at(const batch::BatchInput& input, std::size_t index) {
  return std::get_if<batch::Request>(&input.entries.at(index));
}

int max_tokens_of(const batch::Request& request, const RequestDefaults& defaults) {
  return request.sampling.max_tokens.value_or(defaults.max_tokens);
}

// A request's own sampling: its body's values, else the job's flags, else the checkpoint's
// generation_config.json; its seed, else the job's seed plus the request's index, so that its
// sample depends on nothing else.
models::GenerationOptions sampling_of(const batch::Request& request, std::size_t index, const RequestDefaults& d,
                                      const models::GenerationDefaults& checkpoint) {
  const auto& body = request.sampling;
  const auto top_k = body.top_k ? body.top_k : d.top_k;
  const auto chosen = models::choose_sampling(
      checkpoint, {body.temperature ? body.temperature : d.temperature, body.top_p ? body.top_p : d.top_p,
                   top_k ? std::optional<std::int64_t>(*top_k) : std::nullopt});
  models::GenerationOptions o;
  o.do_sample = chosen.temperature > 0;
  o.temperature = o.do_sample ? chosen.temperature : 1.0;
  o.top_k = chosen.top_k;
  o.top_p = chosen.top_p;
  o.seed = body.seed.value_or(d.seed + index);
  return o;
}

// A job flag's value for the fingerprint; unset flags defer to the checkpoint, itself fingerprinted.
template <class T>
std::string flag_text(const std::optional<T>& value) {
  return value ? std::to_string(*value) : "checkpoint";
}

// The text up to the first stop string, and whether one was found.
std::pair<std::string, bool> cut_at_stop(std::string text, const std::vector<std::string>& stops) {
  auto cut = std::string::npos;
  for (const auto& stop : stops) cut = std::min(cut, text.find(stop));
  if (cut == std::string::npos) return {std::move(text), false};
  text.resize(cut);
  return {std::move(text), true};
}

// The indices of this rank's requests, in the order it serves them: pulled one at a time from
// the job's queue (continuous), or its contiguous share of the input order (static).
class Claims {
 public:
  Claims(const PartialState& state, models::Schedule schedule, std::vector<std::uint64_t> order)
      : order_(std::move(order)) {
    if (schedule == models::Schedule::kContinuous) {
      queue_.emplace(state.distribute(order_.size(), 1));
      return;
    }
    const auto plan = plan_split(order_.size(), state.num_processes(), state.process_index(), false);
    next_ = plan.start;
    end_ = plan.start + plan.count;
  }

  std::optional<std::uint64_t> next() {
    if (queue_) {
      const auto range = queue_->next();
      if (!range) return std::nullopt;
      return order_[range->begin];
    }
    if (next_ == end_) return std::nullopt;
    return order_[next_++];
  }

 private:
  std::vector<std::uint64_t> order_;
  std::optional<WorkQueue> queue_;
  std::size_t next_ = 0, end_ = 0;
};

// A finished request as it travels to the main process through the mailbox.
std::string encode_result(const ResultLine& r) {
  return nlohmann::json{{"index", r.index}, {"line", r.line}, {"text", r.text}, {"new_tokens", r.new_tokens},
                        {"ok", r.ok}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ResultLine decode_result(const std::string& message) {
  const auto j = nlohmann::json::parse(message);
  return {j.at("index").get<std::uint64_t>(), j.at("line").get<std::string>(), j.at("text").get<std::string>(),
          j.at("new_tokens").get<std::int64_t>(), j.at("ok").get<bool>()};
}

// One integer field of a /proc file of "name: value" lines (0 when absent, e.g. without procfs).
long long proc_field(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, name.size() + 1, name + ":") == 0) return std::atoll(line.c_str() + name.size() + 1);
  return 0;
}

std::string rate(double tokens, double seconds) {
  std::ostringstream out;
  out << static_cast<long long>(tokens) << " tokens in " << std::fixed << std::setprecision(2) << seconds << " s ("
      << std::setprecision(1) << (seconds > 0 ? tokens / seconds : 0.0) << " tokens/s)";
  return out.str();
}

}  // namespace

namespace {

// Every rank's view of one job: the input, the entries left to serve, and (on the main process)
// where results go.
class Job {
 public:
  Job(const EngineOptions& options, double started_at) : options_(options), started_at_(started_at) {}
  int run();

 private:
  void plan();
  void serve();
  std::optional<SequenceRequest> next_request(Claims& claims);
  void finished(FinishedSequence done);
  void emit(ResultLine result);
  void drain();
  void wait_for_peers();
  void summarize(const models::BatchingStats& stats, double began, double ended);
  void refuse(std::uint64_t index, const std::string& reason, const std::string& param);

  const EngineOptions& options_;
  double started_at_, group_at_ = 0, load_at_ = 0, first_token_at_ = 0;
  long long load_rchar_ = 0;  // bytes read() while loading: the weights are mapped, not read
  PartialState state_;
  batch::BatchInput input_;
  batch::OutputContext context_;
  std::vector<std::uint64_t> pending_;
  std::unique_ptr<Results> results_;    // the main process only
  std::unique_ptr<batch::Progress> progress_;  // the main process only
  std::size_t received_ = 0;            // results of pending entries the main process has
  std::optional<Mailbox> mailbox_;
  std::unique_ptr<TextModel> model_;
  std::int64_t capacity_ = 0;
};

// Every setting that changes a result, for the output's fingerprint: a rerun with other
// settings does not continue this run's output; the batch size, ranks and schedule may change.
std::map<std::string, std::string> result_settings(const EngineOptions& o) {
  const auto& d = o.defaults;
  return {{"model", model_name(o.model)}, {"model_dir", o.model.model_dir}, {"dtype", o.model.dtype},
          {"max_tokens", std::to_string(d.max_tokens)}, {"temperature", flag_text(d.temperature)},
          {"top_k", flag_text(d.top_k)}, {"top_p", flag_text(d.top_p)}, {"seed", std::to_string(d.seed)},
          {"max_model_len", std::to_string(o.max_model_len)}};
}

// The main process opens the output (checking it before any model work, resuming an earlier
// run's journal) and tells every rank which requests are left; a failure there stops every rank.
void Job::plan() {
  const auto fingerprint = batch::fingerprint_of(input_, result_settings(options_));
  context_ = {model_name(options_.model), batch::run_tag(fingerprint)};
  std::pair<std::pair<std::int64_t, std::string>, std::vector<std::uint64_t>> plan;
  std::exception_ptr failure;
  if (state_.is_main_process()) {
    try {
      results_ = std::make_unique<Results>(ResultsOptions{options_.output_file, options_.overwrite, fingerprint},
                                           input_);
      for (const auto& note : results_->notes()) state_.print("distributed_inference:", note);
      plan.second = results_->remaining();
    } catch (const Error& e) {
      failure = std::current_exception();
      plan.first = {e.exit_code(), e.what()};
    }
  }
  plan = state_.broadcast_object(plan);
  if (failure) std::rethrow_exception(failure);
  if (!plan.first.second.empty())
    throw Error("the main process stopped the job: " + plan.first.second, static_cast<int>(plan.first.first));
  pending_ = std::move(plan.second);
  if (state_.is_main_process()) {
    batch::ProgressOptions progress;
    progress.in_place = batch::is_terminal(STDERR_FILENO);
    progress.interval_s = options_.progress_seconds;
    progress_ = std::make_unique<batch::Progress>(input_.entries.size(), input_.entries.size() - pending_.size(),
                                                  std::cerr, progress);
  }
}

int Job::run() {
  group_at_ = wall_now();
  if (options_.threads > 0) torch::set_num_threads(options_.threads);
  input_ = load_input(options_);
  for (const auto& warning : input_.warnings) state_.print("distributed_inference: warning:", warning);
  plan();
  const auto rchar = proc_field("/proc/self/io", "rchar");
  model_ = std::make_unique<TextModel>(options_.model, state_.device());
  load_at_ = wall_now();
  load_rchar_ = proc_field("/proc/self/io", "rchar") - rchar;
  state_.print("distributed_inference: model", model_->description());
  capacity_ = std::min(options_.max_model_len, model_->max_positions().value_or(options_.max_model_len));
  mailbox_.emplace(state_.mailbox("results"));
  serve();
  if (results_) results_->finish(context_, std::cout);
  return 0;
}

void Job::refuse(std::uint64_t index, const std::string& reason, const std::string& param) {
  const auto refusal = batch::refuse(*request_at(input_, index), reason, param);
  emit({index, batch::format_refusal(refusal, index, context_), refusal.message, 0, false});
}

// The next request this rank serves, its prompt tokenized; entries the model cannot take get
// their error line here and the next one is claimed.
std::optional<SequenceRequest> Job::next_request(Claims& claims) {
  while (const auto index = claims.next()) {
    const auto& request = *request_at(input_, *index);
    SequenceRequest next;
    next.id = *index;
    next.max_tokens = max_tokens_of(request, options_.defaults);
    next.sampling = sampling_of(request, *index, options_.defaults, model_->generation_defaults());
    try {
      next.prompt = model_->prompt_ids(request);
      models::check_generation_options(next.sampling);
    } catch (const PromptRefused& refused) {
      refuse(*index, refused.what(), refused.param());
      continue;
    } catch (const UsageError& bad) {
      refuse(*index, bad.what(), "");
      continue;
    }
    const auto needed = static_cast<std::int64_t>(next.prompt.size()) + next.max_tokens;
    if (needed > capacity_) {
      refuse(*index,
             "the prompt's " + std::to_string(next.prompt.size()) + " tokens + max_tokens " +
                 std::to_string(next.max_tokens) + " exceed the " + std::to_string(capacity_) +
                 " tokens a sequence may hold (the model's context, or --max_model_len)",
             "max_tokens");
      continue;
    }
    return next;
  }
  return std::nullopt;
}

void Job::finished(FinishedSequence done) {
  if (first_token_at_ == 0) first_token_at_ = wall_now();
  const auto& request = *request_at(input_, done.id);
  auto [text, stopped] = cut_at_stop(model_->text(done.tokens), request.sampling.stop);
  batch::Completion completion;
  completion.finish_reason =
      stopped || done.reason == models::FinishReason::kStop ? batch::FinishReason::kStop : batch::FinishReason::kLength;
  completion.prompt_tokens = done.prompt_tokens;
  completion.completion_tokens = static_cast<std::int64_t>(done.tokens.size());
  completion.text = std::move(text);
  const auto created = static_cast<std::int64_t>(wall_now());
  emit({done.id, batch::format_completion(request, done.id, completion, created, context_), completion.text,
        completion.completion_tokens, true});
}

// The main process keeps a result at once; the others post it to the main process.
void Job::emit(ResultLine result) {
  if (!results_) {
    mailbox_->post(encode_result(result));
    return;
  }
  progress_->add(1, result.new_tokens);
  ++received_;
  results_->add(std::move(result));
}

void Job::drain() {
  if (!results_) return;
  for (const auto& message : mailbox_->take()) {
    auto result = decode_result(message);
    progress_->add(1, result.new_tokens);
    ++received_;
    results_->add(std::move(result));
  }
}

// The main process, done with its own requests, keeps writing the others' results as they come
// until every pending entry has its line.
void Job::wait_for_peers() {
  auto last_news = std::chrono::steady_clock::now();
  while (received_ < pending_.size()) {
    const auto before = received_;
    drain();
    if (received_ != before) last_news = std::chrono::steady_clock::now();
    else if (std::chrono::steady_clock::now() - last_news > state_.timeout())
      throw PeerError("no result arrived from the other ranks for " +
                      std::to_string(state_.timeout().count() / 1000) + " s; " +
                      std::to_string(pending_.size() - received_) + " requests are missing");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  progress_->finish();
}

void Job::serve() {
  std::vector<std::uint64_t> order = pending_;
  if (options_.schedule == models::Schedule::kContinuous) {
    // Longest budgets first: the long requests start early instead of ending the job alone.
    std::stable_sort(order.begin(), order.end(), [&](std::uint64_t a, std::uint64_t b) {
      return max_tokens_of(*request_at(input_, a), options_.defaults) >
             max_tokens_of(*request_at(input_, b), options_.defaults);
    });
  }
  const auto decoder = model_->slot_decoder(options_.batch_size, capacity_);
  // Every rank fills all its free slots at once, without model work between claims: a rank that
  // started claiming before the others were ready could take a whole short queue alone.
  if (options_.schedule == models::Schedule::kContinuous) state_.wait_for_everyone();
  Claims claims(state_, options_.schedule, std::move(order));
  models::ContinuousBatcher batcher(*decoder, model_->eos_token_ids(), options_.schedule);
  models::ContinuousBatcher::Callbacks callbacks;
  callbacks.next = [&] { return next_request(claims); };
  callbacks.should_stop = [&](std::size_t id, const std::vector<std::int64_t>& tokens) {
    const auto& stops = request_at(input_, id)->sampling.stop;
    return !stops.empty() && cut_at_stop(model_->text(tokens), stops).second;
  };
  callbacks.finished = [&](FinishedSequence done) { finished(std::move(done)); };
  callbacks.after_step = [&] {
    if (first_token_at_ == 0) first_token_at_ = wall_now();
    drain();
  };
  const double began = wall_now();
  const auto stats = batcher.run(callbacks);
  const double ended = wall_now();
  if (results_) wait_for_peers();
  summarize(stats, began, ended);
}

// Each rank's requests, tokens, busy and idle time, time in the model, slot occupancy while
// requests waited, and with --timeline its phase times for scripts/bench-main-job.sh.
void Job::summarize(const models::BatchingStats& stats, double began, double ended) {
  const std::vector<double> mine = {static_cast<double>(stats.requests), static_cast<double>(stats.new_tokens),
                                    stats.busy_seconds, began, ended, stats.occupancy()};
  const auto all = state_.gather_object(mine);
  char timeline[512];
  std::snprintf(timeline, sizeof timeline,
                "timeline rank=%d ready=%.6f group=%.6f load=%.6f first_token=%.6f done=%.6f tokens=%lld "
                "load_rchar=%lld rss_anon_kb=%lld rss_file_kb=%lld",
                state_.process_index(), started_at_, group_at_, load_at_, first_token_at_ > 0 ? first_token_at_ : ended,
                ended, static_cast<long long>(stats.new_tokens), load_rchar_, proc_field("/proc/self/status", "RssAnon"),
                proc_field("/proc/self/status", "RssFile"));
  // Every rank decides alike (the same flag), so the collective is entered by all or by none.
  const auto timelines = options_.timeline ? state_.gather_object(std::string(timeline)) : std::vector<std::string>{};
  double job_end = 0, job_began = ended, total_tokens = 0;
  for (std::size_t r = 0; r < all.size(); r += mine.size()) {
    job_end = std::max(job_end, all[r + 4]);
    job_began = std::min(job_began, all[r + 3]);
    total_tokens += all[r + 1];
  }
  const auto processes = text::count(static_cast<std::size_t>(state_.num_processes()), "process", "processes");
  state_.print("distributed_inference:", text::count(pending_.size(), "request"), "served on",
               processes + " (" + std::string(accel::to_string(state_.backend())) + ", " + state_.device().str() +
                   "), schedule " + (options_.schedule == models::Schedule::kStatic ? "static" : "continuous") +
                   ", batch " + std::to_string(options_.batch_size));
  for (std::size_t r = 0; r < all.size(); r += mine.size()) {
    // Busy: from its first request to its last result; idle: from then to the job's last result,
    // nothing left to claim while another rank still works.
    batch::RankSummary summary;
    summary.rank = static_cast<int>(r / mine.size());
    summary.requests = static_cast<std::size_t>(all[r]);
    summary.tokens = static_cast<std::int64_t>(all[r + 1]);
    summary.busy_s = all[r + 4] - all[r + 3];
    summary.idle_s = job_end - all[r + 4];
    std::ostringstream line;
    line << batch::summary_line(summary) << ", " << std::fixed << std::setprecision(1)
         << (summary.busy_s > 0 ? all[r + 1] / summary.busy_s : 0.0) << " tokens/s, in the model "
         << std::setprecision(2) << all[r + 2] << " s, slot occupancy " << std::setprecision(1) << 100 * all[r + 5]
         << "%";
    state_.print(line.str());
  }
  state_.print("total:", rate(total_tokens, job_end - job_began), "over", processes);
  for (const auto& line : timelines) state_.print(line);
}

}  // namespace

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int run_engine(const EngineOptions& options, double started_at) { return Job(options, started_at).run(); }

int render_prompts(const EngineOptions& options) {
  const PartialState state;
  if (!state.is_main_process()) return 0;
  const auto input = load_input(options);
  const PromptBuilder prompts(options.model);
  for (const auto& entry : input.entries) {
    nlohmann::json line;
    if (const auto* refusal = std::get_if<batch::Refusal>(&entry)) {
      line = {{"custom_id", refusal->custom_id}, {"error", refusal->message}};
    } else {
      const auto& request = std::get<batch::Request>(entry);
      try {
        const auto prompt = prompts.render(request);
        line = {{"custom_id", request.custom_id}, {"prompt", prompt.text}, {"prompt_token_ids", prompt.ids}};
      } catch (const PromptRefused& refused) {
        line = {{"custom_id", request.custom_id}, {"error", batch::refuse(request, refused.what()).message}};
      }
    }
    std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return 0;
}

}  // namespace accel::examples
