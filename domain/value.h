#pragma once
// A JSON value as the domain holds it: field values, definition documents, event payloads.
// Objects keep their members in the order they were written, so documents round-trip as put.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "domain/json_writer.h"

namespace ticketd {

class Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Object = std::vector<Member>;

class Value {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(double d) : v_(d) {}
  Value(int i) : v_(static_cast<double>(i)) {}
  Value(int64_t i) : v_(static_cast<double>(i)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_shared<const Array>(std::move(a))) {}
  Value(Object o) : v_(std::make_shared<const Object>(std::move(o))) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_number() const { return kind() == Kind::kNumber; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }

  bool as_bool() const { return is_bool() && std::get<bool>(v_); }
  double as_number() const { return is_number() ? std::get<double>(v_) : 0; }
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // Member of an object, or nullptr.
  const Value* find(std::string_view key) const;
  // Member of an object, or a null value.
  const Value& operator[](std::string_view key) const;
  std::string string_or(std::string_view key, std::string fallback = "") const;

  friend bool operator==(const Value& a, const Value& b);

  void write(JsonWriter& w) const;
  // `capacity`: the bytes to reserve at once, where the caller knows about how long the text is.
  // `exact`, when given, is set to whether parse_json of the text gives back this very value:
  // false for what JsonWriter::exact() flags, a key twice in one object or nesting deeper than
  // kMaxJsonDepth (parse_json refuses the text) and a negative zero (written as 0). A walk of the
  // value more.
  std::string to_json(size_t capacity = 0, bool* exact = nullptr) const;

 private:
  friend struct ValueFromDom;  // parse_json builds values where they will live
  std::variant<std::monostate, bool, double, std::string, std::shared_ptr<const Array>,
               std::shared_ptr<const Object>>
      v_;
};

// How deep parse_json follows nesting (the root is at depth 0), a bound on its recursion. What the
// server is sent (a request, a stream message, another system's answer) is read to
// kMaxInputJsonDepth; what it wrote itself, to kMaxJsonDepth: an event's data wraps what it was
// sent in a few levels more (a rule's condition inside the rule's document inside the event), and
// whatever the log takes must read back.
inline constexpr int kMaxJsonDepth = 128;
inline constexpr int kMaxInputJsonDepth = 64;

// Parses JSON text. Returns false with a message (and the byte offset where known) on bad input,
// leaving *out as it was.
bool parse_json(std::string_view text, Value* out, std::string* error,
                int max_depth = kMaxJsonDepth);

// Adds or replaces a member, keeping the position of an existing one.
void set_member(Object& object, std::string_view key, Value value);

}  // namespace ticketd
