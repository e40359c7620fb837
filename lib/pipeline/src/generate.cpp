// Pipelined generation. Rank 0 feeds micro-batches step by step (the whole prompt first, then
// the newest token), every stage runs its blocks with Block::forward_cached and one key/value
// cache per micro-batch, and the last stage picks the tokens and sends them back to rank 0 on a channel of
// their own (kTokenTag). Rank 0 feeds micro-batch m's next step as soon as m's token is back, so
// with num_chunks >= stages every stage has work at each step. The last rank gathers the result
// and hands it to every other rank on the output channel.
//
// Every channel of a call carries its data and then exactly one end or abort, also when a rank
// fails, so no message outlives its call. The token channel closes the loop: a failing rank
// closes its outgoing channel at once (the last rank closes the token channel), which reaches rank
// 0, which then closes the activation channel, which every rank drains to its end.
#include <algorithm>
#include <optional>

#include "accel/core/error.h"
#include "pipeline_impl.h"

namespace accel::pipeline {
namespace {

// One micro-batch's sequences where they are fed (rank 0) and where their tokens are picked
// (the last rank): the tokens so far in a buffer of prompt + max_new_tokens columns (the pad id
// beyond them), the mask over them, which rows have finished and how many tokens each made.
class Sequences {
 public:
  Sequences(const torch::Tensor& ids, const torch::Tensor& mask, std::int64_t max_new_tokens, std::int64_t pad,
            torch::Tensor eos)
      : prompt_(ids.size(1)),
        max_new_tokens_(max_new_tokens),
        pad_(pad),
        eos_(std::move(eos)),
        ids_(torch::full({ids.size(0), prompt_ + max_new_tokens}, pad, torch::kLong)),
        mask_(torch::ones_like(ids_)),
        finished_(torch::zeros({ids.size(0)}, torch::kBool)),
        counts_(torch::zeros({ids.size(0)}, torch::kLong)) {
    ids_.narrow(1, 0, prompt_).copy_(ids);
    mask_.narrow(1, 0, prompt_).copy_(mask);
  }

  std::int64_t rows() const { return ids_.size(0); }
  std::int64_t steps() const { return steps_; }
  bool done() const { return steps_ == max_new_tokens_ || finished_.all().item<bool>(); }

  // The next step's inputs: the whole prompt first, then the newest token; the mask covers every
  // token so far (cached and new).
  Activations step_inputs() const {
    const auto length = prompt_ + steps_;
    return {steps_ == 0 ? ids_.narrow(1, 0, prompt_) : ids_.narrow(1, length - 1, 1), mask_.narrow(1, 0, length)};
  }

  // Appends one token per row (the pad id for rows that had finished); returns them as appended.
  torch::Tensor append(const torch::Tensor& next) {
    const auto tokens = next.to(torch::kCPU, torch::kLong).masked_fill(finished_, pad_);
    counts_ += finished_.logical_not().to(torch::kLong);
    ids_.select(1, prompt_ + steps_).copy_(tokens);
    ++steps_;
    if (eos_.numel() > 0) finished_ |= torch::isin(tokens, eos_);
    return tokens;
  }

  // The prompts and `steps` tokens per row; rows of a micro-batch that stopped earlier are
  // padded, as one process pads the rows that finished first.
  torch::Tensor sequences(std::int64_t steps) const { return ids_.narrow(1, 0, prompt_ + steps); }
  const torch::Tensor& new_token_counts() const { return counts_; }

 private:
  std::int64_t prompt_, max_new_tokens_, pad_;
  torch::Tensor eos_;  // empty: no stop at EOS
  torch::Tensor ids_, mask_, finished_, counts_;
  std::int64_t steps_ = 0;
};

models::Generation to_generation(const torch::Tensor& sequences, const torch::Tensor& counts, std::int64_t prompt) {
  models::Generation generation;
  generation.sequences = sequences;
  for (std::int64_t row = 0; row < sequences.size(0); ++row) {
    const auto tokens = sequences[row].narrow(0, prompt, counts[row].item<std::int64_t>()).contiguous();
    generation.new_tokens.emplace_back(tokens.data_ptr<std::int64_t>(), tokens.data_ptr<std::int64_t>() + tokens.numel());
  }
  return generation;
}

// One generate() call on one rank.
class GenerationCall {
 public:
  GenerationCall(Pipeline::Impl& impl, const models::GenerationOptions& options) : impl_(impl), options_(options) {
    impl_.generating = true;
  }
  ~GenerationCall() { impl_.generating = false; }
  GenerationCall(const GenerationCall&) = delete;
  GenerationCall& operator=(const GenerationCall&) = delete;

  // `refused`: this rank's prompts were refused already; the call still runs its protocol, so
  // that every rank fails it and no rank keeps a message meant for this call.
  models::Generation run(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                         std::exception_ptr refused) {
    if (!refused) refused = accept(input_ids, attention_mask);
    if (refused) impl_.fail_locally(call_, refused);
    try {
      if (!call_.failure && impl_.first()) feed();
      if (!call_.failure && !impl_.first()) relay();
    } catch (const PeerError& e) {
      impl_.fail_fast(e.what());
    } catch (...) {
      impl_.fail_locally(call_, std::current_exception());
    }
    impl_.settle(call_, [&] { finish(); });
    return to_generation(result_[0], result_[1], prompts_.input_ids.size(1));
  }

 private:
  // Checks this rank's inputs and sets up its micro-batches; the refusal, if any.
  std::exception_ptr accept(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    try {
      if (!impl_.language_model) {
        throw UsageError("generate() needs a pipeline prepared from a causal language model (a models::CausalLM "
                         "such as GPT2LMHeadModel or LlamaForCausalLM)");
      }
      models::check_generation_options(options_);
      const auto& model = *impl_.language_model;
      prompts_ = models::checked_prompts(input_ids, attention_mask, model.max_positions, options_);
      const auto pad = models::padding_id(model.eos_token_ids, options_);
      const auto eos = options_.stop_at_eos ? torch::tensor(model.eos_token_ids, torch::kLong) : torch::empty({0}, torch::kLong);
      std::int64_t row = 0;
      for (const auto size : micro_batch_sizes(prompts_.input_ids.size(0), impl_.num_chunks)) {
        sequences_.emplace_back(prompts_.input_ids.narrow(0, row, size), prompts_.attention_mask.narrow(0, row, size),
                                options_.max_new_tokens, pad, eos);
        caches_.emplace_back(prompts_.input_ids.size(1) + options_.max_new_tokens);
        row += size;
      }
      if (impl_.last()) chooser_.emplace(options_);
    } catch (...) {
      return std::current_exception();
    }
    return nullptr;
  }

  // Rank 0: round-robin over the micro-batches that have not finished, one step each.
  void feed() {
    for (std::int64_t step = 0;; ++step) {
      bool fed = false;
      for (std::size_t m = 0; m < sequences_.size(); ++m) {
        if (sequences_[m].done()) continue;
        if (step > 0 && !take_tokens(m, step - 1)) return;
        if (sequences_[m].done()) continue;
        auto out = impl_.run_stage(sequences_[m].step_inputs(), step, static_cast<std::int64_t>(m), &caches_[m]);
        pass_on(m, step, std::move(out));
        fed = true;
      }
      if (!fed) return;
    }
  }

  // Rank 0: micro-batch m's tokens of `step`, from the last rank; false when a failure came instead.
  bool take_tokens(std::size_t m, std::int64_t step) {
    if (impl_.last()) return true;  // one process: pick() appended them already
    Message message = impl_.receive(impl_.num_stages - 1, kTokenTag);
    if (message.kind == MessageKind::kAbort) {
      tokens_closed_ = true;
      call_.failure = std::move(message);
      return false;
    }
    if (message.kind != MessageKind::kData || message.micro != static_cast<std::int64_t>(m) || message.batch != step ||
        message.tensors.size() != 1 || message.tensors[0].numel() != sequences_[m].rows()) {
      throw PeerError("rank 0 expected the tokens of step " + std::to_string(step) + " of micro-batch " +
                      std::to_string(m) + " from rank " + std::to_string(impl_.num_stages - 1) +
                      " but received another message: the ranks' generate() calls are out of step");
    }
    sequences_[m].append(message.tensors[0]);
    return true;
  }

  // Ranks after the first: runs every step that arrives until the end of the call.
  void relay() {
    while (true) {
      Message message = impl_.receive(impl_.rank - 1, kActivationTag);
      if (message.kind != MessageKind::kData) {
        call_.upstream_done = true;
        if (message.kind == MessageKind::kAbort) call_.failure = std::move(message);
        return;
      }
      const auto rows = prompts_.input_ids.size(0);
      if (message.batch_rows != rows) {
        throw UsageError("rank " + std::to_string(impl_.rank) + " was given " + std::to_string(rows) +
                         " prompts but rank 0 has " + std::to_string(message.batch_rows) +
                         "; every rank must pass the same prompts");
      }
      const auto m = static_cast<std::size_t>(message.micro);
      auto out = impl_.run_stage(std::move(message.tensors), message.batch, message.micro, &caches_.at(m));
      pass_on(m, message.batch, std::move(out));
    }
  }

  // A stage's outputs for micro-batch m: to the next stage, or, on the last, the next tokens.
  void pass_on(std::size_t m, std::int64_t step, Activations out) {
    if (impl_.last()) return pick(m, step, out);
    Message message;
    message.batch = step;
    message.micro = static_cast<std::int64_t>(m);
    message.batch_rows = prompts_.input_ids.size(0);
    message.tensors = std::move(out);
    impl_.send(impl_.rank + 1, kActivationTag, std::move(message));
    impl_.links->wait_sends(static_cast<std::size_t>(impl_.num_chunks));
  }

  // The last rank: picks micro-batch m's tokens from the logits and sends them to rank 0.
  void pick(std::size_t m, std::int64_t step, const Activations& out) {
    if (out.size() != 1 || out[0].dim() != 3 || out[0].size(0) != sequences_[m].rows()) {
      throw Error("the last block returned " + std::to_string(out.size()) + " tensor(s)" +
                  (out.empty() ? "" : " (the first of shape " + c10::str(out[0].sizes()) + ")") +
                  " where generate() needs one, the logits [rows, tokens, vocabulary]");
    }
    const auto logits = out[0].select(1, out[0].size(1) - 1).to(torch::kCPU, torch::kFloat32);
    skip_to(m, step, logits.size(1));
    auto tokens = sequences_[m].append(chooser_->choose(logits));
    advance();
    if (impl_.first()) return;
    Message message;
    message.batch = step;
    message.micro = static_cast<std::int64_t>(m);
    message.tensors = {tokens};
    impl_.send(0, kTokenTag, std::move(message));
    impl_.links->wait_sends(static_cast<std::size_t>(impl_.num_chunks));
  }

  // Micro-batches take their steps in feed order (step by step, micro-batch by micro-batch). One
  // that has finished takes no more steps, but the variates of its rows are consumed as one
  // process consumes them for rows that have finished, so that sampling draws alike.
  void skip_to(std::size_t m, std::int64_t step, std::int64_t vocab) {
    while (pick_step_ < step || (pick_step_ == step && pick_micro_ < m)) {
      chooser_->skip(sequences_[pick_micro_].rows(), vocab);
      advance();
    }
    if (pick_step_ != step || pick_micro_ != m) {
      throw PeerError("rank " + std::to_string(impl_.rank) + " received step " + std::to_string(step) +
                      " of micro-batch " + std::to_string(m) + " out of order: the ranks' generate() calls are out of step");
    }
  }

  void advance() {
    if (++pick_micro_ < sequences_.size()) return;
    pick_micro_ = 0;
    ++pick_step_;
  }

  // The rest of the protocol (see the top of the file), then the result on every rank.
  void finish() {
    if (!impl_.last()) impl_.send(impl_.rank + 1, kActivationTag, call_.failure ? *call_.failure : Message::end());
    if (impl_.last() && !impl_.first()) impl_.send(0, kTokenTag, call_.failure ? *call_.failure : Message::end());
    while (!impl_.first() && !call_.upstream_done) {
      call_.upstream_done = impl_.receive(impl_.rank - 1, kActivationTag).kind != MessageKind::kData;
    }
    while (impl_.first() && !impl_.last() && !tokens_closed_) {
      tokens_closed_ = impl_.receive(impl_.num_stages - 1, kTokenTag).kind != MessageKind::kData;
    }
    if (impl_.last()) gather_result();
    if (impl_.last() && impl_.num_stages > 1) impl_.send_outputs(call_);
    if (!impl_.last()) {
      impl_.receive_outputs(call_, [&](std::size_t, Activations out) {
        if (out.size() != 2) throw PeerError("rank " + std::to_string(impl_.num_stages - 1) + " sent a malformed result");
        result_ = std::move(out);
      });
    }
  }

  // The last rank: every micro-batch's sequences as one batch, and what it sends the others.
  void gather_result() {
    if (call_.failure) return;
    std::int64_t steps = 0;
    for (const auto& s : sequences_) steps = std::max(steps, s.steps());
    std::vector<torch::Tensor> rows, counts;
    for (const auto& s : sequences_) {
      rows.push_back(s.sequences(steps));
      counts.push_back(s.new_token_counts());
    }
    result_ = {torch::cat(rows, 0), torch::cat(counts, 0)};
    call_.outputs_to_gather = {result_};
  }

  Pipeline::Impl& impl_;
  models::GenerationOptions options_;
  Pipeline::Impl::Call call_;
  models::PromptBatch prompts_;
  std::vector<Sequences> sequences_;   // used on rank 0 and the last rank
  std::vector<models::KVCache> caches_;  // this stage's layers, one cache per micro-batch
  std::optional<models::TokenChooser> chooser_;  // the last rank
  std::int64_t pick_step_ = 0;                   // the last rank: the next step and micro-batch in feed order
  std::size_t pick_micro_ = 0;
  bool tokens_closed_ = false;  // rank 0: the token channel has ended
  Activations result_;          // {sequences, new-token counts}
};

}  // namespace

models::Generation Pipeline::Impl::generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                            const models::GenerationOptions& options, std::exception_ptr refused) {
  CallScope scope(*this);
  torch::NoGradGuard no_grad;
  GenerationCall call(*this, options);
  return call.run(input_ids, attention_mask, refused);
}

models::Generation Pipeline::generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      const models::GenerationOptions& options) {
  return impl_->generate(input_ids, attention_mask, options);
}

models::Generation Pipeline::generate(const std::vector<std::vector<std::int64_t>>& prompts,
                                      const models::GenerationOptions& options) {
  models::PromptBatch batch;
  std::exception_ptr refused;
  try {
    const auto eos = impl_->language_model ? impl_->language_model->eos_token_ids : std::vector<std::int64_t>{};
    batch = models::left_pad(prompts, models::padding_id(eos, options));
  } catch (const UsageError&) {
    refused = std::current_exception();
  }
  return impl_->generate(batch.input_ids, batch.attention_mask, options, refused);
}

}  // namespace accel::pipeline
