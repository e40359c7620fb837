#pragma once
// accel::Codec for at::Tensor, so that gather_object / broadcast_object carry tensors (alone or
// inside vectors, maps, pairs, optionals and users' own types) as accelerate's gather_object
// pickles them: dtype, shape and the values, received on the CPU. An undefined tensor stays
// undefined.
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "accel/runtime/object_codec.h"

namespace accel {

template <>
struct Codec<at::Tensor> {
  static void write(ByteWriter& w, const at::Tensor& tensor) {
    Codec<bool>::write(w, tensor.defined());
    if (!tensor.defined()) return;
    const auto host = tensor.to(at::kCPU).contiguous();
    Codec<std::int64_t>::write(w, static_cast<std::int64_t>(host.scalar_type()));
    Codec<std::vector<std::int64_t>>::write(w, host.sizes().vec());
    w.raw(host.data_ptr(), host.numel() * host.element_size());
  }
  static at::Tensor read(ByteReader& r) {
    if (!Codec<bool>::read(r)) return {};
    const auto dtype = Codec<std::int64_t>::read(r);
    if (dtype < 0 || dtype >= static_cast<std::int64_t>(c10::ScalarType::NumOptions)) r.fail();
    const auto shape = Codec<std::vector<std::int64_t>>::read(r);
    for (auto size : shape) {
      if (size < 0) r.fail();
    }
    auto tensor = at::empty(shape, at::dtype(static_cast<c10::ScalarType>(dtype)));
    r.raw(tensor.data_ptr(), tensor.numel() * tensor.element_size());
    return tensor;
  }
};

}  // namespace accel
