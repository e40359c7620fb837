#include "envelope.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "accel/core/error.h"

namespace accel::pipeline {
namespace {

// Slot 0: "ACCL" and the version byte. The fixed fields follow; the rest holds an abort's text
// or an inline descriptor.
constexpr std::int64_t kMagic = 0x4143434C;
enum Slot : std::int64_t {
  kHeader,
  kKind,
  kCall,
  kBatch,
  kMicro,
  kLastOfBatch,
  kBatchRows,
  kOrigin,
  kNumTensors,
  kDescriptorSize,  // negative: that many entries inline
  kTextSize,
  kFixedSlots = 12,
};
constexpr std::int64_t kTailSlots = kEnvelopeSlots - kFixedSlots;
constexpr std::size_t kMaxAbortText = kTailSlots * sizeof(std::int64_t);
constexpr std::int64_t kMaxTensors = 4096;
constexpr std::int64_t kMaxDimensions = 64;
constexpr std::int64_t kMaxDescriptor = kMaxTensors * (2 + kMaxDimensions);

[[noreturn]] void malformed(int peer, const std::string& what) {
  throw PeerError("a pipeline message from rank " + std::to_string(peer) + " is malformed (" + what +
                  "); every rank must run the same build of the program");
}

void check_range(int peer, const char* field, std::int64_t value, std::int64_t low, std::int64_t high) {
  if (value < low || value > high) {
    malformed(peer, std::string(field) + " = " + std::to_string(value) + ", outside " + std::to_string(low) + ".." +
                        std::to_string(high));
  }
}

}  // namespace

Message Message::abort(int origin, std::string text) {
  Message message;
  message.kind = MessageKind::kAbort;
  message.origin = origin;
  if (text.size() > kMaxAbortText) text = text.substr(0, kMaxAbortText - 3) + "...";
  message.text = std::move(text);
  return message;
}

Message Message::end() {
  Message message;
  message.kind = MessageKind::kEnd;
  return message;
}

std::int64_t TensorLayout::bytes() const {
  std::int64_t numel = 1;
  for (auto size : shape) numel *= size;
  return numel * static_cast<std::int64_t>(c10::elementSize(dtype));
}

std::vector<std::int64_t> describe_tensors(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::int64_t> descriptor;
  for (const auto& tensor : tensors) {
    descriptor.push_back(static_cast<std::int64_t>(tensor.scalar_type()));
    descriptor.push_back(tensor.dim());
    for (auto size : tensor.sizes()) descriptor.push_back(size);
  }
  return descriptor;
}

bool descriptor_inline(const std::vector<std::int64_t>& descriptor) {
  return static_cast<std::int64_t>(descriptor.size()) <= kTailSlots;
}

torch::Tensor encode_envelope(const Message& message, const std::vector<std::int64_t>& descriptor) {
  auto envelope = torch::zeros({kEnvelopeSlots}, torch::kInt64);
  auto* slots = envelope.data_ptr<std::int64_t>();
  const bool in_envelope = descriptor_inline(descriptor);
  const auto descriptor_size = static_cast<std::int64_t>(descriptor.size());
  const auto text_size = std::min(message.text.size(), kMaxAbortText);
  slots[kHeader] = (kMagic << 8) | kEnvelopeVersion;
  slots[kKind] = static_cast<std::int64_t>(message.kind);
  slots[kCall] = message.call;
  slots[kBatch] = message.batch;
  slots[kMicro] = message.micro;
  slots[kLastOfBatch] = message.last_of_batch ? 1 : 0;
  slots[kBatchRows] = message.batch_rows;
  slots[kOrigin] = message.origin;
  slots[kNumTensors] = static_cast<std::int64_t>(message.tensors.size());
  slots[kDescriptorSize] = in_envelope ? -descriptor_size : descriptor_size;
  slots[kTextSize] = static_cast<std::int64_t>(text_size);
  if (message.kind == MessageKind::kAbort) {
    std::memcpy(slots + kFixedSlots, message.text.data(), text_size);
  } else if (in_envelope) {
    std::copy(descriptor.begin(), descriptor.end(), slots + kFixedSlots);
  }
  return envelope;
}

DecodedEnvelope decode_envelope(const torch::Tensor& envelope, int peer) {
  const auto* slots = envelope.data_ptr<std::int64_t>();
  if ((slots[kHeader] >> 8) != kMagic) malformed(peer, "it does not start with an accel-launch envelope");
  const auto version = static_cast<std::int64_t>(slots[kHeader] & 0xff);
  if (version != kEnvelopeVersion) {
    throw PeerError("rank " + std::to_string(peer) + " speaks pipeline message version " + std::to_string(version) +
                    " but this rank speaks version " + std::to_string(kEnvelopeVersion) +
                    "; every rank must run the same build of the program");
  }
  check_range(peer, "kind", slots[kKind], 1, 3);
  check_range(peer, "tensor count", slots[kNumTensors], 0, kMaxTensors);
  check_range(peer, "descriptor size", slots[kDescriptorSize], -kTailSlots, kMaxDescriptor);
  check_range(peer, "text size", slots[kTextSize], 0, static_cast<std::int64_t>(kMaxAbortText));
  check_range(peer, "micro-batch", slots[kMicro], 0, std::numeric_limits<std::int64_t>::max());
  check_range(peer, "batch rows", slots[kBatchRows], 0, std::numeric_limits<std::int64_t>::max());
  DecodedEnvelope decoded;
  auto& m = decoded.message;
  m.kind = static_cast<MessageKind>(slots[kKind]);
  m.call = slots[kCall];
  m.batch = slots[kBatch];
  m.micro = slots[kMicro];
  m.last_of_batch = slots[kLastOfBatch] != 0;
  m.batch_rows = slots[kBatchRows];
  m.origin = slots[kOrigin];
  if (m.kind == MessageKind::kAbort) {
    m.text.assign(reinterpret_cast<const char*>(slots + kFixedSlots), static_cast<std::size_t>(slots[kTextSize]));
  }
  decoded.num_tensors = slots[kNumTensors];
  decoded.inline_descriptor = slots[kDescriptorSize] <= 0;
  decoded.descriptor_size = decoded.inline_descriptor ? -slots[kDescriptorSize] : slots[kDescriptorSize];
  return decoded;
}

std::vector<std::int64_t> inline_descriptor(const torch::Tensor& envelope, const DecodedEnvelope& decoded) {
  const auto* slots = envelope.data_ptr<std::int64_t>() + kFixedSlots;
  return {slots, slots + decoded.descriptor_size};
}

std::vector<TensorLayout> decode_descriptor(const std::vector<std::int64_t>& descriptor, std::int64_t num_tensors,
                                            int peer) {
  std::vector<TensorLayout> layouts;
  std::size_t at = 0;
  auto next = [&](const char* field) {
    if (at >= descriptor.size()) malformed(peer, std::string("the descriptor ends before the ") + field);
    return descriptor[at++];
  };
  for (std::int64_t i = 0; i < num_tensors; ++i) {
    const auto dtype = next("dtype");
    check_range(peer, "dtype", dtype, 0, static_cast<std::int64_t>(c10::ScalarType::NumOptions) - 1);
    const auto ndim = next("dimension count");
    check_range(peer, "dimension count", ndim, 0, kMaxDimensions);
    TensorLayout layout{static_cast<c10::ScalarType>(dtype), {}};
    for (std::int64_t d = 0; d < ndim; ++d) {
      const auto size = next("size");
      check_range(peer, "size", size, 0, std::numeric_limits<std::int32_t>::max());
      layout.shape.push_back(size);
    }
    layouts.push_back(std::move(layout));
  }
  if (at != descriptor.size()) malformed(peer, "the descriptor has entries beyond its tensors");
  return layouts;
}

}  // namespace accel::pipeline
