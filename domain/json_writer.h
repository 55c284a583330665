#pragma once
// A small streaming JSON writer. Strings are written as valid UTF-8 whatever they hold: control
// characters are escaped, and bytes that are not well-formed UTF-8 become U+FFFD, so no stored
// value can make a response unparsable. Commas are placed automatically.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ticketd {

class JsonWriter {
 public:
  JsonWriter() = default;
  // Room for `capacity` bytes from the start: a document written into an empty string is copied
  // each time the string doubles, five times for an event's payload of 400 bytes.
  explicit JsonWriter(size_t capacity) { out_.resize(capacity); }

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

  // The document so far.
  std::string_view str() const { return {out_.data(), size_}; }
  std::string take() {
    out_.resize(size_);
    size_ = 0;
    return std::move(out_);
  }

  // Whether parsing the document gives back exactly what was put in: false once bytes that are not
  // well-formed UTF-8 were replaced, a non-finite number written as null, or a negative zero
  // written as -0 (which parses as 0). Raw JSON is taken to read back as itself.
  bool exact() const { return exact_; }

  // Appends `v` to `out` as a quoted JSON string.
  static void append_quoted(std::string& out, std::string_view v);

 private:
  // Room for `n` more bytes, counted as written: the caller fills them. One capacity check for a
  // whole token, where std::string's appends check (and call out) for each byte or piece.
  char* extend(size_t n) {
    if (out_.size() - size_ < n) grow(n);
    char* at = out_.data() + size_;
    size_ += n;
    return at;
  }
  void grow(size_t n);
  void put(char c) { *extend(1) = c; }
  void put(std::string_view s) {
    if (!s.empty()) std::memcpy(extend(s.size()), s.data(), s.size());
  }
  // The comma a value needs before it (0 for none), with the container marked as holding one.
  char separator();
  void before_value();
  // `lead` (a comma, or 0 for none), `v` quoted, then `trail` (a key's colon, or 0).
  void quoted(char lead, std::string_view v, char trail);
  void quoted_rest(std::string_view v, size_t from);
  void escaped_ascii(unsigned char c);
  void escaped_checking_utf8(std::string_view v);

  // Bytes [0, size_) are the document; the rest is room, its bytes zeros or stale.
  std::string out_;
  size_t size_ = 0;
  // One entry per open container: 1 once it holds a member, so the next one needs a comma. A
  // string for its inline room (15 levels): a document then allocates nothing for this.
  std::string has_member_;
  bool after_key_ = false;
  bool exact_ = true;
};

// API.md's error object, as members of an object the caller has begun: "code", "message", and
// "field" when one field is at fault. Error answers, an import's refused rows, a dashboard widget
// that cannot run and the stream's refusals are all written by it.
void write_error_members(JsonWriter& w, std::string_view code, std::string_view message,
                         std::string_view field = "");

}  // namespace ticketd
