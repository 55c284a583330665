#include "domain/text.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>

namespace ticketd {

bool valid_utf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

size_t utf8_length(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string ascii_lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

TextSearch::TextSearch(std::string_view needle) : needle_(ascii_lowercase(needle)) {
  folds_ = std::any_of(needle_.begin(), needle_.end(), [](char c) { return c >= 'a' && c <= 'z'; });
  const size_t m = needle_.size();
  shift_.fill(static_cast<uint8_t>(std::min<size_t>(m, 255)));
  for (size_t k = 0; k + 1 < m; ++k) {
    const auto shift = static_cast<uint8_t>(std::min<size_t>(m - 1 - k, 255));
    const char c = needle_[k];
    shift_[static_cast<unsigned char>(c)] = shift;
    if (c >= 'a' && c <= 'z') shift_[static_cast<unsigned char>(c - 'a' + 'A')] = shift;
  }
}

bool TextSearch::found_in(std::string_view text) const {
  // Without a letter to fold, the library's search (memchr, then memcmp) is faster still.
  if (!folds_) return text.find(needle_) != std::string_view::npos;
  const size_t m = needle_.size();
  // Horspool: the needle is compared from its end at each place, and moved on by what the
  // text's byte under its end allows, several bytes at a time where that byte is not in it.
  for (size_t end = m - 1; end < text.size();
       end += shift_[static_cast<unsigned char>(text[end])]) {
    size_t j = 0;
    while (j < m && ascii_lower(text[end - j]) == needle_[m - 1 - j]) ++j;
    if (j == m) return true;
  }
  return false;
}

std::optional<std::string> control_character_in(std::string_view text, TextLines lines) {
  size_t character = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) ++character;
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0u;
    unsigned code;
    if (c < 0x20 || c == 0x7F) {
      code = c;
    } else if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {  // U+0080..U+009F, the C1 controls
      code = next;
    } else {
      continue;
    }
    const bool line_break = code == '\n' || code == '\r';
    if (lines == TextLines::kMany && (line_break || code == '\t')) continue;
    const std::string at = " at character " + std::to_string(character);
    if (line_break) return "has a line break" + at + ": one line only";
    char name[8];
    std::snprintf(name, sizeof name, "U+%04X", code);
    return std::string("has the control character ") + name + at +
           (lines == TextLines::kMany ? " (only line breaks and tabs are taken)" : "");
  }
  return std::nullopt;
}

namespace {

// The bytes of the space `rest` starts with (ASCII whitespace, U+00A0, U+3000), 0 if none.
size_t space_length(std::string_view rest) {
  if (rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r') return 1;
  if (rest.starts_with("\xC2\xA0")) return 2;      // U+00A0
  if (rest.starts_with("\xE3\x80\x80")) return 3;  // U+3000
  return 0;
}

}  // namespace

bool blank(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t space = space_length(text.substr(i));
    if (space == 0) return false;
    i += space;
  }
  return true;
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t space = space_length(text.substr(i));
    if (space == 0) {
      ++i;
      continue;
    }
    if (i > start) out.push_back(text.substr(start, i - start));
    i += space;
    start = i;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

std::optional<std::string> phone_number(std::string_view text) {
  // The full-width forms (U+FF01..U+FF5E are ASCII's 0x21..0x7E) and the ideographic space.
  std::string s;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const auto next = [&](size_t k) {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u;
    };
    if (c < 0x80) {
      s.push_back(static_cast<char>(c));
    } else if (c == 0xE3 && next(1) == 0x80 && next(2) == 0x80) {
      s.push_back(' ');
      i += 2;
    } else if (c == 0xEF && (next(1) == 0xBC || next(1) == 0xBD) && next(2) >= 0x80 &&
               next(2) <= 0xBF) {
      const unsigned code = 0xFF00 + ((next(1) - 0xBC) << 6) + (next(2) - 0x80);  // U+FF00..FF7F
      if (code < 0xFF01 || code > 0xFF5E) return std::nullopt;
      s.push_back(static_cast<char>(code - 0xFF01 + 0x21));
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  size_t digits = 0;
  enum { kNone, kOpen, kClosed } parentheses = kNone;
  char previous = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool after_digit = previous >= '0' && previous <= '9';
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == '+') {
      if (i != 0) return std::nullopt;
    } else if (c == '(') {
      if (parentheses != kNone) return std::nullopt;
      parentheses = kOpen;
    } else if (c == ')') {
      if (parentheses != kOpen || !after_digit) return std::nullopt;
      parentheses = kClosed;
    } else if (c == ' ' || c == '-' || c == '.') {
      if (digits == 0 || parentheses == kOpen || previous == '(') return std::nullopt;
    } else {
      return std::nullopt;
    }
    previous = c;
  }
  if (parentheses == kOpen || digits < 5 || digits > 15) return std::nullopt;
  return s;
}

bool valid_email(std::string_view s) {
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos)
    return false;
  if (s.size() > 254) return false;
  // Spaces and controls (CR and LF would end an SMTP command early) are in no address.
  if (s.find(' ') != std::string_view::npos || control_character_in(s, TextLines::kOne))
    return false;
  std::string_view domain = s.substr(at + 1);
  auto dot = domain.rfind('.');
  return dot != std::string_view::npos && dot > 0 && dot + 1 < domain.size() &&
         domain.find("..") == std::string_view::npos;
}

}  // namespace ticketd
