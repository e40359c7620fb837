#pragma once
// Lets gather_object / broadcast_object carry nlohmann::json values (as CBOR). Kept out of
// object_codec.h so that only code which exchanges JSON pays for the JSON header.
#include <nlohmann/json.hpp>

#include <string>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/runtime/object_codec.h"

namespace accel {
namespace codec_detail {

// nlohmann's CBOR reader recurses once per nesting level, so bytes nested 100 000 deep would
// overflow the stack: this DOM builder stops the reader at the project's JSON nesting bound.
class BoundedJsonBuilder : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
 public:
  explicit BoundedJsonBuilder(nlohmann::json& result) : json_sax_dom_parser(result, /*allow_exceptions_=*/false) {}
  bool start_object(std::size_t n) { return enter() && json_sax_dom_parser::start_object(n); }
  bool start_array(std::size_t n) { return enter() && json_sax_dom_parser::start_array(n); }
  bool end_object() { return leave() && json_sax_dom_parser::end_object(); }
  bool end_array() { return leave() && json_sax_dom_parser::end_array(); }
  bool too_deep() const { return too_deep_; }

 private:
  bool enter() {
    too_deep_ = ++depth_ > text::kMaxJsonNesting;
    return !too_deep_;
  }
  bool leave() {
    --depth_;
    return true;
  }
  std::size_t depth_ = 0;
  bool too_deep_ = false;
};

}  // namespace codec_detail

template <>
struct Codec<nlohmann::json> {
  static void write(ByteWriter& w, const nlohmann::json& j) { Codec<Bytes>::write(w, nlohmann::json::to_cbor(j)); }
  static nlohmann::json read(ByteReader& r) {
    const Bytes cbor = Codec<Bytes>::read(r);
    nlohmann::json value;
    codec_detail::BoundedJsonBuilder builder(value);
    bool complete = false;
    try {
      complete = nlohmann::json::sax_parse(cbor, &builder, nlohmann::json::input_format_t::cbor);
    } catch (const nlohmann::json::exception&) {
      // Thrown despite allow_exceptions=false, e.g. for an array header claiming 2^62 items.
      r.fail();
    }
    if (builder.too_deep())
      throw PeerError("rank " + std::to_string(r.from_rank()) + " sent JSON nested deeper than " +
                      std::to_string(text::kMaxJsonNesting) + " levels; gather_object / broadcast_object refuse it");
    if (!complete || builder.is_errored()) r.fail();
    return value;
  }
};

}  // namespace accel
