#pragma once
// What a chat template can call: jinja2's filters and tests (the subset templates use), the
// methods of strings, dicts and lists that the immutable sandbox allows, item and attribute
// access as jinja2 resolves them, and the globals transformers provides. Private to
// lib/models; torch-free.
#include "jinja_value.h"

#include <optional>
#include <string>
#include <vector>

namespace accel::models::jinja {

class Interpreter;

bool is_filter(const std::string& name);
bool is_test(const std::string& name);
std::string filter_names();
std::string test_names();

Value apply_filter(Interpreter& in, const std::string& name, const Value& input, Args args, int line);
bool apply_test(Interpreter& in, const std::string& name, const Value& subject, Args args, int line);

// x.name: a dict's item (or its get/items/keys/values method), a string's method, a
// namespace's attribute; undefined when there is none. TemplateError on undefined `object`.
Value get_attribute(Interpreter& in, const Value& object, const std::string& name, int line);
// x[key]: an item by key or index (negative from the end); undefined when absent.
Value get_item(Interpreter& in, const Value& object, const Value& key, int line);
// x[start:stop:step] of a list or string, with Python's rules (null parts: the defaults).
Value get_slice(Interpreter& in, const Value& object, const Value* start, const Value* stop, const Value* step,
                int line);
// range, namespace, dict, raise_exception, strftime_now.
std::optional<Value> global(const std::string& name);
// What `for x in value` visits: a list's items, a dict's keys, a string's characters; nothing
// for undefined. TemplateError for anything else.
std::vector<Value> iterate(Interpreter& in, const Value& value, int line);
// a + b, a - b, ... with Python's types (int overflow and division by zero are errors).
Value arithmetic(Interpreter& in, const std::string& op, const Value& a, const Value& b, int line);
// `needle in container`.
bool contains(Interpreter& in, const Value& container, const Value& needle, int line);

}  // namespace accel::models::jinja
