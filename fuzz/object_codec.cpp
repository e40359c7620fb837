// Fuzzes the byte codec of gather_object / broadcast_object: the first byte picks the type to
// decode, the rest is what a peer sent. Decoding must succeed or raise accel::PeerError.
#include "accel/core/error.h"
#include "accel/runtime/json_codec.h"
#include "accel/runtime/object_codec.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

template <class T>
void decode_as(const accel::Bytes& bytes) {
  try {
    accel::decode<T>(bytes, 1);
  } catch (const accel::PeerError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const accel::Bytes bytes(data + 1, data + size);
  switch (data[0] % 4) {
    case 0: decode_as<std::map<std::string, std::vector<std::optional<double>>>>(bytes); break;
    case 1: decode_as<std::vector<std::pair<std::int32_t, std::string>>>(bytes); break;
    case 2: decode_as<std::vector<bool>>(bytes); break;
    case 3: decode_as<nlohmann::json>(bytes); break;
  }
  return 0;
}
