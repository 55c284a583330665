#include "domain/json_writer.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ticketd {
namespace {

// Length of the well-formed UTF-8 sequence at s[i], or 0 when it is not one (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// What a byte needs inside a JSON string: nothing, an escape, or (0x80 and up) a UTF-8 check.
enum ByteClass : unsigned char { kPlain, kEscape, kNonAscii };

constexpr std::array<ByteClass, 256> byte_classes() {
  std::array<ByteClass, 256> t{};
  for (int b = 0; b < 256; ++b)
    t[b] = b >= 0x80                                        ? kNonAscii
           : b < 0x20 || b == '"' || b == '\\' || b == 0x7f ? kEscape
                                                            : kPlain;
  return t;
}
constexpr std::array<ByteClass, 256> kByteClass = byte_classes();

constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;

// Nonzero when some byte of the eight in `w` needs more than copying (SWAR: one test a word
// instead of one a byte): a byte below 0x20, '"', '\\' or 0x7f, and any of 0x80 or above unless
// `high_bits_stop` is 0 (text known to be well-formed UTF-8). Each test is exact for "some byte
// is such", which is all that is asked.
inline uint64_t word_stops(uint64_t w, uint64_t high_bits_stop) {
  auto has_zero_byte = [](uint64_t x) { return (x - kOnes) & ~x & kHighs; };
  return ((w - kOnes * 0x20) & ~w & kHighs) | has_zero_byte(w ^ (kOnes * '"')) |
         has_zero_byte(w ^ (kOnes * '\\')) | has_zero_byte(w ^ (kOnes * 0x7f)) |
         (w & high_bits_stop);
}

inline uint64_t word_at(std::string_view v, size_t i) {
  uint64_t w;
  std::memcpy(&w, v.data() + i, sizeof w);
  return w;
}

// From `from`, skips the whole words of `v` that need nothing; the word that has a byte that does
// is left to the byte loop.
size_t skip_plain_words(std::string_view v, size_t from, bool non_ascii_is_plain) {
  const uint64_t high_bits_stop = non_ascii_is_plain ? 0 : kHighs;
  while (from + 8 <= v.size() && !word_stops(word_at(v, from), high_bits_stop)) from += 8;
  return from;
}

// How many bytes from the start of `v` are plain ASCII (all of it for most keys and values): a
// word at a time, the last word overlapping the one before (or, for text shorter than a word,
// padded with spaces), and within the word that stops, a byte at a time.
size_t plain_length(std::string_view v) {
  auto bytes_from = [&](size_t i) {
    while (i < v.size() && kByteClass[static_cast<unsigned char>(v[i])] == kPlain) ++i;
    return i;
  };
  if (v.size() < 8) {
    uint64_t w = kOnes * ' ';
    if (!v.empty()) std::memcpy(&w, v.data(), v.size());
    return word_stops(w, kHighs) ? bytes_from(0) : v.size();
  }
  size_t i = 0;
  for (; i + 8 < v.size(); i += 8) {
    if (word_stops(word_at(v, i), kHighs)) return bytes_from(i);
  }
  return word_stops(word_at(v, v.size() - 8), kHighs) ? bytes_from(i) : v.size();
}

}  // namespace

void JsonWriter::grow(size_t n) {
  // Doubling, as std::string would; resize() fills the new room with zeros once.
  out_.resize(std::max(size_ + n, 2 * out_.size() + 64));
}

void JsonWriter::escaped_ascii(unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      return put("\\\"");
    case '\\':
      return put("\\\\");
    case '\n':
      return put("\\n");
    case '\r':
      return put("\\r");
    case '\t':
      return put("\\t");
    case '\b':
      return put("\\b");
    case '\f':
      return put("\\f");
    default:
      if (c < 0x20 || c == 0x7f) {
        char* p = extend(6);
        std::memcpy(p, "\\u00", 4);
        p[4] = kHex[c >> 4];
        p[5] = kHex[c & 15];
      } else {
        put(static_cast<char>(c));
      }
  }
}

// Escapes `v` byte by byte, checking its UTF-8 as it goes: for text that is not well-formed.
void JsonWriter::escaped_checking_utf8(std::string_view v) {
  for (size_t i = 0; i < v.size();) {
    // Copy the run of printable ASCII and well-formed UTF-8 sequences in one go.
    size_t run = i;
    while (run < v.size()) {
      unsigned char b = static_cast<unsigned char>(v[run]);
      if (b >= 0x80) {
        size_t n = utf8_sequence_length(v, run);
        if (n == 0) break;
        run += n;
        continue;
      }
      if (kByteClass[b] == kEscape) break;
      ++run;
    }
    if (run > i) {
      put(v.substr(i, run - i));
      i = run;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c >= 0x80) {        // not well-formed UTF-8
      put("\xEF\xBF\xBD");  // U+FFFD
      exact_ = false;
      ++i;
      continue;
    }
    escaped_ascii(c);
    ++i;
  }
}

// The rest of a quoted string from `from` (v[0, from) is plain and already written), and the
// closing quote. At the first byte of 0x80 or above the rest is checked as UTF-8 at once
// (simdjson's SIMD check): text that passes, Chinese for one, then needs only its ASCII escapes;
// text that does not goes byte by byte from there.
void JsonWriter::quoted_rest(std::string_view v, size_t from) {
  bool utf8_checked = false;
  for (size_t i = from; i < v.size();) {
    size_t run = skip_plain_words(v, i, utf8_checked);
    while (run < v.size()) {
      ByteClass k = kByteClass[static_cast<unsigned char>(v[run])];
      if (k == kEscape || (k == kNonAscii && !utf8_checked)) break;
      ++run;
    }
    put(v.substr(i, run - i));
    if (run == v.size()) break;
    const auto c = static_cast<unsigned char>(v[run]);
    if (c >= 0x80) {
      if (!simdjson::validate_utf8(v.data() + run, v.size() - run)) {
        escaped_checking_utf8(v.substr(run));
        break;
      }
      utf8_checked = true;
      i = run;
      continue;
    }
    escaped_ascii(c);
    i = run + 1;
  }
  put('"');
}

// Plain text, the most of keys and values, goes in as one token: its quotes, the comma before and
// the colon after with one capacity check.
void JsonWriter::quoted(char lead, std::string_view v, char trail) {
  const size_t plain = plain_length(v);
  const bool whole = plain == v.size();
  char* p = extend((lead != 0) + 1 + plain + (whole ? 1 + (trail != 0) : 0));
  if (lead) *p++ = lead;
  *p++ = '"';
  if (plain) std::memcpy(p, v.data(), plain);  // an empty view's data() may be null
  if (whole) {
    p += plain;
    *p++ = '"';
    if (trail) *p = trail;
    return;
  }
  quoted_rest(v, plain);
  if (trail) put(trail);
}

void JsonWriter::append_quoted(std::string& out, std::string_view v) {
  JsonWriter w;
  w.quoted(0, v, 0);
  out += w.str();
}

char JsonWriter::separator() {
  if (after_key_) {
    after_key_ = false;
    return 0;
  }
  if (has_member_.empty()) return 0;
  const bool comma = has_member_.back();
  has_member_.back() = 1;
  return comma ? ',' : 0;
}

void JsonWriter::before_value() {
  if (char c = separator()) put(c);
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  put('{');
  has_member_.push_back(0);
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  put('}');
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  put('[');
  has_member_.push_back(0);
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  put(']');
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  quoted(separator(), k, ':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view v) {
  quoted(separator(), v, 0);
  return *this;
}

JsonWriter& JsonWriter::number(int64_t v) {
  before_value();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  put(std::string_view(buf, r.ptr - buf));
  return *this;
}

JsonWriter& JsonWriter::number(uint64_t v) {
  before_value();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  put(std::string_view(buf, r.ptr - buf));
  return *this;
}

JsonWriter& JsonWriter::number(double v) {
  if (!std::isfinite(v)) {  // JSON has no NaN or infinity
    exact_ = false;
    return null();
  }
  if (v == 0 && std::signbit(v)) exact_ = false;
  before_value();
  char buf[32];
  // Shortest round-trip form; large magnitudes with an exponent, because the fixed form of, say,
  // -1.1e21 is a 22-digit integer that strict parsers (simdjson among them) refuse.
  auto r = std::abs(v) >= 1e15
               ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific)
               : std::to_chars(buf, buf + sizeof buf, v);
  put(std::string_view(buf, r.ptr - buf));
  return *this;
}

JsonWriter& JsonWriter::boolean(bool v) {
  before_value();
  put(v ? std::string_view("true") : std::string_view("false"));
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  put("null");
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  before_value();
  put(json);
  return *this;
}

void write_error_members(JsonWriter& w, std::string_view code, std::string_view message,
                         std::string_view field) {
  w.key("code").string(code).key("message").string(message);
  if (!field.empty()) w.key("field").string(field);
}

}  // namespace ticketd
