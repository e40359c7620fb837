#pragma once
// The fixed-size envelope that starts every pipeline message: what the message is (data, end of a
// call, abort), which call, batch and micro-batch it belongs to, and how its tensors are laid out.
// A version byte leads, so a rank built from other sources is refused by name instead of being
// misread, and every count read back is checked against the envelope's bounds before it is used.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace accel::pipeline {

enum class MessageKind : std::int64_t {
  kData = 1,   // one micro-batch's activations (or, on the output channel, one batch's outputs)
  kEnd = 2,    // no more messages on this channel for this call
  kAbort = 3,  // a rank failed: `origin` names it, `text` is its message
};

struct Message {
  MessageKind kind = MessageKind::kData;
  // Numbers the Pipeline's calls, the same on every rank: a message from another call is refused.
  std::int64_t call = 0;
  std::int64_t batch = 0;
  std::int64_t micro = 0;
  bool last_of_batch = false;
  std::int64_t batch_rows = 0;  // rows of the whole batch the micro-batch was cut from
  std::int64_t origin = -1;
  std::vector<torch::Tensor> tensors;
  std::string text;  // kAbort only; travels inside the envelope (truncated to fit)

  static Message abort(int origin, std::string text);
  static Message end();
};

inline constexpr std::int64_t kEnvelopeSlots = 128;  // int64 slots of one envelope
inline constexpr std::uint8_t kEnvelopeVersion = 1;

// dtype and shape of one tensor of a message's payload.
struct TensorLayout {
  c10::ScalarType dtype;
  std::vector<std::int64_t> shape;
  std::int64_t bytes() const;
};

// Flattens the tensors' layouts: dtype, ndim, then the sizes, per tensor.
std::vector<std::int64_t> describe_tensors(const std::vector<torch::Tensor>& tensors);

// The envelope of `message` (its tensors' layouts in `descriptor`). The descriptor travels inside
// the envelope when it fits (descriptor_inline() says so); else the sender sends it next.
torch::Tensor encode_envelope(const Message& message, const std::vector<std::int64_t>& descriptor);
bool descriptor_inline(const std::vector<std::int64_t>& descriptor);

struct DecodedEnvelope {
  Message message;                   // without tensors
  std::int64_t num_tensors = 0;
  std::int64_t descriptor_size = 0;  // int64 entries
  bool inline_descriptor = false;
};

// Reads an envelope received from rank `peer`; throws accel::PeerError naming the peer when the
// version differs or a field is out of bounds.
DecodedEnvelope decode_envelope(const torch::Tensor& envelope, int peer);

// The inline descriptor's entries of a decoded envelope.
std::vector<std::int64_t> inline_descriptor(const torch::Tensor& envelope, const DecodedEnvelope& decoded);

// The layouts a descriptor describes; throws accel::PeerError naming the peer when it is malformed.
std::vector<TensorLayout> decode_descriptor(const std::vector<std::int64_t>& descriptor, std::int64_t num_tensors,
                                            int peer);

}  // namespace accel::pipeline
