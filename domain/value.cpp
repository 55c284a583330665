#include "domain/value.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>

namespace ticketd {
namespace {

const std::string kEmptyString;
const Array kEmptyArray;
const Object kEmptyObject;
const Value kNull;

// Containers are reserved at the size simdjson counted (it saturates at 2^24 - 1), up to a
// bound, so a hostile count costs nothing: members are then built in place, never moved.
constexpr size_t kReserveAtMost = 1024;

}  // namespace

// Builds each value where it will live: no temporary values, no moves of containers.
struct ValueFromDom {
  static bool convert(simdjson::dom::element e, Value* out, std::string* error, int depth,
                      int max_depth) {
    if (depth > max_depth) {
      *error = "JSON nested too deeply";
      return false;
    }
    auto& v = out->v_;
    switch (e.type()) {
      case simdjson::dom::element_type::NULL_VALUE:
        v.emplace<std::monostate>();
        return true;
      case simdjson::dom::element_type::BOOL:
        v.emplace<bool>(e.get_bool().value_unsafe());
        return true;
      case simdjson::dom::element_type::INT64:
        v.emplace<double>(static_cast<double>(e.get_int64().value_unsafe()));
        return true;
      case simdjson::dom::element_type::UINT64:
        v.emplace<double>(static_cast<double>(e.get_uint64().value_unsafe()));
        return true;
      case simdjson::dom::element_type::DOUBLE:
        v.emplace<double>(e.get_double().value_unsafe());
        return true;
      case simdjson::dom::element_type::STRING: {
        std::string_view s = e.get_string().value_unsafe();
        v.emplace<std::string>(s.data(), s.size());
        return true;
      }
      case simdjson::dom::element_type::ARRAY: {
        simdjson::dom::array items = e.get_array().value_unsafe();
        auto a = std::make_shared<Array>();
        a->reserve(std::min(items.size(), kReserveAtMost));
        for (simdjson::dom::element item : items) {
          if (!convert(item, &a->emplace_back(), error, depth + 1, max_depth)) return false;
        }
        v.emplace<std::shared_ptr<const Array>>(std::move(a));
        return true;
      }
      case simdjson::dom::element_type::OBJECT: {
        simdjson::dom::object members = e.get_object().value_unsafe();
        auto o = std::make_shared<Object>();
        o->reserve(std::min(members.size(), kReserveAtMost));
        for (simdjson::dom::key_value_pair field : members) {
          for (const auto& m : *o) {
            if (m.first == field.key) {
              *error = "duplicate key \"" + std::string(field.key) + "\"";
              return false;
            }
          }
          Member& m = o->emplace_back(std::piecewise_construct, std::forward_as_tuple(field.key),
                                      std::forward_as_tuple());
          if (!convert(field.value, &m.second, error, depth + 1, max_depth)) return false;
        }
        v.emplace<std::shared_ptr<const Object>>(std::move(o));
        return true;
      }
    }
    *error = "unsupported JSON value";
    return false;
  }
};

const std::string& Value::as_string() const {
  return is_string() ? std::get<std::string>(v_) : kEmptyString;
}
const Array& Value::as_array() const {
  return is_array() ? *std::get<std::shared_ptr<const Array>>(v_) : kEmptyArray;
}
const Object& Value::as_object() const {
  return is_object() ? *std::get<std::shared_ptr<const Object>>(v_) : kEmptyObject;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : as_object()) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Value& Value::operator[](std::string_view key) const {
  const Value* v = find(key);
  return v ? *v : kNull;
}

std::string Value::string_or(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  return v && v->is_string() ? v->as_string() : fallback;
}

bool operator==(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
      return a.as_bool() == b.as_bool();
    case Value::Kind::kNumber:
      return a.as_number() == b.as_number();
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kArray:
      return a.as_array() == b.as_array();
    case Value::Kind::kObject:
      return a.as_object() == b.as_object();
  }
  return false;
}

void Value::write(JsonWriter& w) const {
  switch (kind()) {
    case Kind::kNull:
      w.null();
      break;
    case Kind::kBool:
      w.boolean(as_bool());
      break;
    case Kind::kNumber: {
      double d = as_number();
      // Range first: converting a double outside int64's range is undefined behaviour.
      if (d > -9e15 && d < 9e15 && d == static_cast<double>(static_cast<int64_t>(d))) {
        w.number(static_cast<int64_t>(d));
      } else {
        w.number(d);
      }
      break;
    }
    case Kind::kString:
      w.string(as_string());
      break;
    case Kind::kArray:
      w.begin_array();
      for (const auto& v : as_array()) v.write(w);
      w.end_array();
      break;
    case Kind::kObject:
      w.begin_object();
      for (const auto& [k, v] : as_object()) {
        w.key(k);
        v.write(w);
      }
      w.end_object();
      break;
  }
}

namespace {

// What of a value JSON text cannot carry back beyond what JsonWriter::exact() sees: a key twice in
// one object and nesting past kMaxJsonDepth (parse_json refuses the text), and a negative zero
// (written as 0).
bool carried_by_json(const Value& v, int depth) {
  if (depth > kMaxJsonDepth) return false;
  switch (v.kind()) {
    case Value::Kind::kNumber:
      return !(v.as_number() == 0 && std::signbit(v.as_number()));
    case Value::Kind::kArray:
      return std::all_of(v.as_array().begin(), v.as_array().end(),
                         [&](const Value& item) { return carried_by_json(item, depth + 1); });
    case Value::Kind::kObject: {
      const Object& o = v.as_object();
      for (size_t i = 0; i < o.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (o[j].first == o[i].first) return false;
        }
        if (!carried_by_json(o[i].second, depth + 1)) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

}  // namespace

std::string Value::to_json(size_t capacity, bool* exact) const {
  JsonWriter w(capacity);
  write(w);
  if (exact) *exact = w.exact() && carried_by_json(*this, 0);
  return w.take();
}

bool parse_json(std::string_view text, Value* out, std::string* error, int max_depth) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto err = parser.parse(text.data(), text.size()).get(root);
  if (err) {
    // simdjson says only "Problem while parsing a number", for valid JSON out of range too.
    *error = err == simdjson::NUMBER_ERROR
                 ? "malformed JSON: a number is malformed (such as 01, 1. or -) or beyond a "
                   "double's range (about ±1.8e308)"
                 : std::string("malformed JSON: ") + simdjson::error_message(err);
    return false;
  }
  return ValueFromDom::convert(root, out, error, 0, max_depth);
}

void set_member(Object& object, std::string_view key, Value value) {
  for (auto& [k, v] : object) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  object.emplace_back(std::string(key), std::move(value));
}

}  // namespace ticketd
