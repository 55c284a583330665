#include "domain/json_writer.h"

#include <simdjson.h>

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

void append_escaped_ascii(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      } else {
        out.push_back(static_cast<char>(c));
      }
  }
}

// From `from`, skips whole eight-byte words of `v` that need nothing (SWAR: one test a word
// instead of one a byte): no byte below 0x20, no '"', '\\' or 0x7f, and, unless the text is
// known to be well-formed UTF-8 already, none of 0x80 or above. Each test is exact for "some
// byte is such", which is all that is asked; the word that has one is left to the byte loop.
size_t skip_plain_words(std::string_view v, size_t from, bool non_ascii_is_plain) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  auto has_zero_byte = [](uint64_t w) { return (w - kOnes) & ~w & kHighs; };
  const uint64_t high_bits_stop = non_ascii_is_plain ? 0 : kHighs;
  while (from + 8 <= v.size()) {
    uint64_t w;
    std::memcpy(&w, v.data() + from, sizeof w);
    const uint64_t stop = ((w - kOnes * 0x20) & ~w & kHighs) | has_zero_byte(w ^ (kOnes * '"')) |
                          has_zero_byte(w ^ (kOnes * '\\')) | has_zero_byte(w ^ (kOnes * 0x7f)) |
                          (w & high_bits_stop);
    if (stop != 0) break;
    from += 8;
  }
  return from;
}

// Escapes `v` byte by byte, checking its UTF-8 as it goes: for text that is not well-formed.
void append_escaped_checking_utf8(std::string& out, std::string_view v) {
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
      out.append(v.data() + i, run - i);
      i = run;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c >= 0x80) {          // not well-formed UTF-8
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    append_escaped_ascii(out, c);
    ++i;
  }
}

}  // namespace

void JsonWriter::append_quoted(std::string& out, std::string_view v) {
  // Copies runs of bytes that need nothing in one go. At the first byte of 0x80 or above the rest
  // is checked as UTF-8 at once (simdjson's SIMD check): text that passes, Chinese for one, then
  // needs only its ASCII escapes; text that does not goes byte by byte from there.
  out.push_back('"');
  bool utf8_checked = false;
  for (size_t i = 0; i < v.size();) {
    size_t run = skip_plain_words(v, i, utf8_checked);
    while (run < v.size()) {
      ByteClass k = kByteClass[static_cast<unsigned char>(v[run])];
      if (k == kEscape || (k == kNonAscii && !utf8_checked)) break;
      ++run;
    }
    out.append(v.data() + i, run - i);
    if (run == v.size()) break;
    const auto c = static_cast<unsigned char>(v[run]);
    if (c >= 0x80) {
      if (!simdjson::validate_utf8(v.data() + run, v.size() - run)) {
        append_escaped_checking_utf8(out, v.substr(run));
        break;
      }
      utf8_checked = true;
      i = run;
      continue;
    }
    append_escaped_ascii(out, c);
    i = run + 1;
  }
  out.push_back('"');
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_member_.empty()) {
    if (has_member_.back()) out_.push_back(',');
    has_member_.back() = 1;
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_.push_back('{');
  has_member_.push_back(0);
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_.push_back('}');
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_.push_back('[');
  has_member_.push_back(0);
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_.push_back(']');
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  before_value();
  append_quoted(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view v) {
  before_value();
  append_quoted(out_, v);
  return *this;
}

JsonWriter& JsonWriter::number(int64_t v) {
  before_value();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::number(uint64_t v) {
  before_value();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::number(double v) {
  if (!std::isfinite(v)) return null();  // JSON has no NaN or infinity
  before_value();
  char buf[32];
  // Shortest round-trip form; large magnitudes with an exponent, because the fixed form of, say,
  // -1.1e21 is a 22-digit integer that strict parsers (simdjson among them) refuse.
  auto r = std::abs(v) >= 1e15
               ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific)
               : std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  before_value();
  out_ += json;
  return *this;
}

void write_error_members(JsonWriter& w, std::string_view code, std::string_view message,
                         std::string_view field) {
  w.key("code").string(code).key("message").string(message);
  if (!field.empty()) w.key("field").string(field);
}

}  // namespace ticketd
