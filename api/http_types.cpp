#include "api/http_types.h"

#include "domain/text.h"

namespace ticketd::api {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_chunked(std::string_view coding) { return ascii_lowercase(coding) == "chunked"; }

}  // namespace

std::optional<TransferCodingRefusal> refuse_transfer_coding(
    unsigned version, const std::vector<std::string_view>& lines) {
  if (lines.empty()) return std::nullopt;
  if (version < 11) {
    return TransferCodingRefusal{400, "bad_request",
                                 "an HTTP/1.0 request has no Transfer-Encoding: send "
                                 "Content-Length, or use HTTP/1.1"};
  }
  // The lines are one comma-separated list (RFC 9110 5.3), empty elements allowed.
  std::vector<std::string_view> codings;
  for (std::string_view line : lines) {
    while (true) {
      size_t comma = line.find(',');
      std::string_view element = trim_ows(line.substr(0, comma));
      if (!element.empty()) codings.push_back(element);
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
  }
  size_t chunked = 0;
  std::string_view other;
  for (std::string_view c : codings) {
    if (is_chunked(c)) {
      ++chunked;
    } else if (other.empty()) {
      other = c;
    }
  }
  if (codings.empty() || !is_chunked(codings.back()) || chunked != 1) {
    return TransferCodingRefusal{
        400, "bad_request",
        "the body's length cannot be known: Transfer-Encoding must end with chunked, applied "
        "once (or send Content-Length instead)"};
  }
  if (!other.empty()) {
    return TransferCodingRefusal{501, "not_implemented",
                                 "transfer coding \"" + std::string(other) +
                                     "\" is not supported: send the body chunked alone or with "
                                     "Content-Length"};
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_uint(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

bool percent_decode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_digit(in[i + 1]);
      int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else if (in[i] == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

std::string content_disposition(std::string_view disposition, std::string_view filename) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string ascii, encoded;
  for (char ch : filename) {
    const auto c = static_cast<unsigned char>(ch);
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    // RFC 5987's attr-char; the rest is percent-encoded.
    if (alnum || std::string_view("!#$&+-.^_`|~").find(ch) != std::string_view::npos) {
      encoded.push_back(ch);
    } else {
      encoded += {'%', kHex[c >> 4], kHex[c & 15]};
    }
    // A quoted-string's plain characters: printable ASCII but the quote and the backslash. A
    // multi-byte character becomes one '_', at its first byte.
    if (c >= 0x20 && c < 0x7F && ch != '"' && ch != '\\') {
      ascii.push_back(ch);
    } else if (c < 0x80 || c >= 0xC0) {
      ascii.push_back('_');
    }
  }
  return std::string(disposition) + "; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

bool parse_target(std::string_view target, std::string* path,
                  std::map<std::string, std::string>* query, std::string* repeated) {
  size_t q = target.find('?');
  if (!percent_decode(target.substr(0, q), false, path)) return false;
  if (path->empty() || (*path)[0] != '/') return false;
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key, value;
    if (!percent_decode(pair.substr(0, eq), true, &key)) return false;
    if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), true, &value))
      return false;
    if (!key.empty() && !query->emplace(key, std::move(value)).second) {
      *repeated = std::move(key);
      return false;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return true;
}

}  // namespace ticketd::api
