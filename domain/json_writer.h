#pragma once
// A small streaming JSON writer. Strings are written as valid UTF-8 whatever they hold: control
// characters are escaped, and bytes that are not well-formed UTF-8 become U+FFFD, so no stored
// value can make a response unparsable. Commas are placed automatically.
#include <cstdint>
#include <string>
#include <string_view>

namespace ticketd {

class JsonWriter {
 public:
  JsonWriter() = default;
  // Room for `capacity` bytes from the start: a document written into an empty string is copied
  // each time the string doubles, five times for an event's payload of 400 bytes.
  explicit JsonWriter(size_t capacity) { out_.reserve(capacity); }

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& string(std::string_view v);
  JsonWriter& number(int64_t v);
  JsonWriter& number(uint64_t v);
  JsonWriter& number(int v) { return number(static_cast<int64_t>(v)); }
  JsonWriter& number(double v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  // Inserts already-serialized JSON (e.g. a stored payload) as one value.
  JsonWriter& raw(std::string_view json);

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

  // Appends `v` to `out` as a quoted JSON string.
  static void append_quoted(std::string& out, std::string_view v);

 private:
  void before_value();

  std::string out_;
  // One entry per open container: 1 once it holds a member, so the next one needs a comma. A
  // string for its inline room (15 levels): a document then allocates nothing for this.
  std::string has_member_;
  bool after_key_ = false;
};

// API.md's error object, as members of an object the caller has begun: "code", "message", and
// "field" when one field is at fault. Error answers, an import's refused rows, a dashboard widget
// that cannot run and the stream's refusals are all written by it.
void write_error_members(JsonWriter& w, std::string_view code, std::string_view message,
                         std::string_view field = "");

}  // namespace ticketd
