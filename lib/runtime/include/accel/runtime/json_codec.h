#pragma once
// Lets gather_object / broadcast_object carry nlohmann::json values (as CBOR). Kept out of
// object_codec.h so that only code which exchanges JSON pays for the JSON header.
#include <nlohmann/json.hpp>

#include "accel/runtime/object_codec.h"

namespace accel {

template <>
struct Codec<nlohmann::json> {
  static void write(ByteWriter& w, const nlohmann::json& j) { Codec<Bytes>::write(w, nlohmann::json::to_cbor(j)); }
  static nlohmann::json read(ByteReader& r) { return nlohmann::json::from_cbor(Codec<Bytes>::read(r)); }
};

}  // namespace accel
