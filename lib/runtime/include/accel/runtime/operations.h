#pragma once
// accelerate.utils.operations for nested data: a tensor, or a std::vector / std::map of nested
// data (recursively), as accelerate's functions take nested lists, tuples and dicts of tensors.
// PartialState's collectives accept the same nesting (gather, broadcast, reduce,
// pad_across_processes); these are the local helpers.
#include <ATen/ATen.h>

#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "accel/core/error.h"

namespace accel {

// True for at::Tensor and for vectors and maps of nested data.
template <class T>
struct is_nested_tensors : std::false_type {};
template <>
struct is_nested_tensors<at::Tensor> : std::true_type {};
template <class T>
struct is_nested_tensors<std::vector<T>> : is_nested_tensors<T> {};
template <class K, class V>
struct is_nested_tensors<std::map<K, V>> : is_nested_tensors<V> {};
template <class T>
inline constexpr bool is_nested_tensors_v = is_nested_tensors<T>::value;
// Nested data other than a lone tensor.
template <class T>
inline constexpr bool is_nested_container_v = is_nested_tensors_v<T> && !std::is_same_v<T, at::Tensor>;

// The same structure with fn applied to every tensor (accelerate's recursively_apply).
template <class F>
at::Tensor map_tensors(const at::Tensor& tensor, F&& fn) {
  return fn(tensor);
}
template <class T, class F>
std::vector<T> map_tensors(const std::vector<T>& items, F&& fn) {
  std::vector<T> out;
  out.reserve(items.size());
  for (const auto& item : items) out.push_back(map_tensors(item, fn));
  return out;
}
template <class K, class V, class F>
std::map<K, V> map_tensors(const std::map<K, V>& items, F&& fn) {
  std::map<K, V> out;
  for (const auto& [key, value] : items) out.emplace(key, map_tensors(value, fn));
  return out;
}

// A description of the nesting (sizes and keys, not the tensors' shapes) that two ranks compare
// before a nested collective: "[T,T]", "{ids:T,mask:T}".
inline void describe_structure(const at::Tensor&, std::ostream& out) { out << 'T'; }
template <class T>
void describe_structure(const std::vector<T>& items, std::ostream& out) {
  out << '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out << ',';
    describe_structure(items[i], out);
  }
  out << ']';
}
template <class K, class V>
void describe_structure(const std::map<K, V>& items, std::ostream& out) {
  out << '{';
  bool first = true;
  for (const auto& [key, value] : items) {
    if (!first) out << ',';
    first = false;
    out << key << ':';
    describe_structure(value, out);
  }
  out << '}';
}
template <class T>
std::string structure_of(const T& nested) {
  std::ostringstream out;
  describe_structure(nested, out);
  return out.str();
}

// Every tensor moved to `device` (accelerate's send_to_device).
template <class T, class = std::enable_if_t<is_nested_tensors_v<T>>>
T send_to_device(const T& nested, c10::Device device, bool non_blocking = false) {
  return map_tensors(nested, [&](const at::Tensor& t) { return t.to(device, non_blocking); });
}

// The first dimension of the first tensor found (accelerate's find_batch_size); throws
// accel::UsageError when the data holds no tensor with a dimension.
inline std::int64_t find_batch_size(const at::Tensor& tensor) {
  if (!tensor.defined() || tensor.dim() == 0) {
    throw UsageError("find_batch_size: the data holds no tensor with a batch dimension (dim 0)");
  }
  return tensor.size(0);
}
template <class T>
std::int64_t find_batch_size(const std::vector<T>& items) {
  if (items.empty()) throw UsageError("find_batch_size: the data holds no tensor with a batch dimension (dim 0)");
  return find_batch_size(items.front());
}
template <class K, class V>
std::int64_t find_batch_size(const std::map<K, V>& items) {
  if (items.empty()) throw UsageError("find_batch_size: the data holds no tensor with a batch dimension (dim 0)");
  return find_batch_size(items.begin()->second);
}

// Joins same-structured data along `dim` (accelerate's concatenate): tensors are concatenated,
// vectors and maps element by element. Throws accel::UsageError when the structures differ.
inline at::Tensor concatenate(const std::vector<at::Tensor>& parts, std::int64_t dim = 0) { return at::cat(parts, dim); }
template <class T>
std::vector<T> concatenate(const std::vector<std::vector<T>>& parts, std::int64_t dim = 0) {
  if (parts.empty()) return {};
  std::vector<T> out;
  for (std::size_t i = 0; i < parts.front().size(); ++i) {
    std::vector<T> column;
    for (const auto& part : parts) {
      if (part.size() != parts.front().size()) {
        throw UsageError("concatenate: the parts hold " + std::to_string(part.size()) + " and " +
                         std::to_string(parts.front().size()) + " elements; every part must have the same structure");
      }
      column.push_back(part[i]);
    }
    out.push_back(concatenate(column, dim));
  }
  return out;
}
template <class K, class V>
std::map<K, V> concatenate(const std::vector<std::map<K, V>>& parts, std::int64_t dim = 0) {
  if (parts.empty()) return {};
  std::map<K, V> out;
  for (const auto& [key, first] : parts.front()) {
    std::vector<V> column;
    for (const auto& part : parts) {
      const auto found = part.find(key);
      if (found == part.end() || part.size() != parts.front().size()) {
        throw UsageError("concatenate: the parts have different keys; every part must have the same structure");
      }
      column.push_back(found->second);
    }
    out.emplace(key, concatenate(column, dim));
  }
  return out;
}

}  // namespace accel
