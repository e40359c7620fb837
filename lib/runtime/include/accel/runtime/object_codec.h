#pragma once
// The byte encoding gather_object / broadcast_object use to move values between ranks.
// Supported: arithmetic types, std::string, and std::vector / std::map / std::pair /
// std::optional of supported types; include accel/runtime/json_codec.h for nlohmann::json.
// accel/runtime/tensor_codec.h adds at::Tensor. Add a type of your own by specializing
// accel::Codec<T> with write(ByteWriter&, const T&) and read(ByteReader&) (the codec hook):
//   template <> struct accel::Codec<Point> {
//     static void write(ByteWriter& w, const Point& p) { Codec<double>::write(w, p.x); Codec<double>::write(w, p.y); }
//     static Point read(ByteReader& r) { double x = Codec<double>::read(r); return {x, Codec<double>::read(r)}; }
//   };
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "accel/core/error.h"

namespace accel {

using Bytes = std::vector<std::uint8_t>;

class ByteWriter {
 public:
  void raw(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  void size(std::size_t n) {
    const auto v = static_cast<std::uint64_t>(n);
    raw(&v, sizeof v);
  }
  Bytes take() { return std::move(bytes_); }

 private:
  Bytes bytes_;
};

// Reads what ByteWriter wrote. A short or over-long message means the ranks disagreed on the
// type they exchange: a PeerError naming the sending rank, never undefined behaviour.
class ByteReader {
 public:
  ByteReader(const Bytes& bytes, int from_rank) : p_(bytes.data()), end_(bytes.data() + bytes.size()), from_(from_rank) {}
  void raw(void* out, std::size_t size) {
    if (static_cast<std::size_t>(end_ - p_) < size) mismatch();
    std::memcpy(out, p_, size);
    p_ += size;
  }
  std::size_t size() {
    std::uint64_t v = 0;
    raw(&v, sizeof v);
    // Every encoded element takes at least one byte, so a larger count is corruption.
    if (v > static_cast<std::uint64_t>(end_ - p_)) mismatch();
    return static_cast<std::size_t>(v);
  }
  void finish() const {
    if (p_ != end_) mismatch();
  }
  // For a Codec that finds a value no writer produces.
  [[noreturn]] void fail() const { mismatch(); }
  int from_rank() const { return from_; }

 private:
  [[noreturn]] void mismatch() const {
    throw PeerError("rank " + std::to_string(from_) +
                    " sent an object that does not decode as the type this rank expects; every rank must pass "
                    "the same type to gather_object / broadcast_object");
  }
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  int from_;
};

template <class T, class Enable = void>
struct Codec {
  static_assert(sizeof(T) == 0,
                "accel::Codec<T> is not specialized for this type: use arithmetic types, std::string, "
                "std::vector/map/pair/optional of them, nlohmann::json (accel/runtime/json_codec.h), or "
                "specialize accel::Codec");
};

template <class T>
struct Codec<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static void write(ByteWriter& w, T v) { w.raw(&v, sizeof v); }
  static T read(ByteReader& r) {
    T v{};
    r.raw(&v, sizeof v);
    return v;
  }
};

// One byte; any value but 0 or 1 is corruption (copied into a bool it would be undefined
// behaviour).
template <>
struct Codec<bool> {
  static void write(ByteWriter& w, bool v) { Codec<std::uint8_t>::write(w, v ? 1 : 0); }
  static bool read(ByteReader& r) {
    const std::uint8_t byte = Codec<std::uint8_t>::read(r);
    if (byte > 1) r.fail();
    return byte == 1;
  }
};

template <>
struct Codec<std::string> {
  static void write(ByteWriter& w, const std::string& s) {
    w.size(s.size());
    w.raw(s.data(), s.size());
  }
  static std::string read(ByteReader& r) {
    std::string s(r.size(), '\0');
    r.raw(s.data(), s.size());
    return s;
  }
};

template <class T>
struct Codec<std::vector<T>> {
  static void write(ByteWriter& w, const std::vector<T>& v) {
    w.size(v.size());
    for (const auto& x : v) Codec<T>::write(w, x);
  }
  static std::vector<T> read(ByteReader& r) {
    std::vector<T> v;
    const auto n = r.size();
    v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) v.push_back(Codec<T>::read(r));
    return v;
  }
};

template <class A, class B>
struct Codec<std::pair<A, B>> {
  static void write(ByteWriter& w, const std::pair<A, B>& p) {
    Codec<A>::write(w, p.first);
    Codec<B>::write(w, p.second);
  }
  static std::pair<A, B> read(ByteReader& r) {
    A a = Codec<A>::read(r);
    B b = Codec<B>::read(r);
    return {std::move(a), std::move(b)};
  }
};

template <class K, class V>
struct Codec<std::map<K, V>> {
  static void write(ByteWriter& w, const std::map<K, V>& m) {
    w.size(m.size());
    for (const auto& kv : m) Codec<std::pair<K, V>>::write(w, kv);
  }
  static std::map<K, V> read(ByteReader& r) {
    std::map<K, V> m;
    const auto n = r.size();
    for (std::size_t i = 0; i < n; ++i) m.insert(Codec<std::pair<K, V>>::read(r));
    return m;
  }
};

template <class T>
struct Codec<std::optional<T>> {
  static void write(ByteWriter& w, const std::optional<T>& o) {
    Codec<bool>::write(w, o.has_value());
    if (o) Codec<T>::write(w, *o);
  }
  static std::optional<T> read(ByteReader& r) {
    if (!Codec<bool>::read(r)) return std::nullopt;
    return Codec<T>::read(r);
  }
};

template <class T>
Bytes encode(const T& value) {
  ByteWriter w;
  Codec<T>::write(w, value);
  return w.take();
}

template <class T>
T decode(const Bytes& bytes, int from_rank) {
  ByteReader r(bytes, from_rank);
  T value = Codec<T>::read(r);
  r.finish();
  return value;
}

}  // namespace accel
