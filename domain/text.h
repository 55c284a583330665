#pragma once
// Human text as the server takes it in: field values, comments, names. The JSON parser has made
// sure it is UTF-8; these checks keep out what UTF-8 allows but no person types.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ticketd {

// Text from elsewhere than a JSON body (a header, a file) before it is taken as UTF-8.
bool valid_utf8(std::string_view text);

// Characters (code points) in UTF-8 text.
size_t utf8_length(std::string_view text);

// Latin capitals as small letters, every other byte (UTF-8's among them) as it is: ids, header
// names, media types and searches compare so. Inline: a search calls it for every byte it reads.
inline char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string ascii_lowercase(std::string_view text);
// Without the spaces and tabs around it: HTTP's optional whitespace (OWS) in header values.
std::string_view trim_ows(std::string_view text);

// A search for a piece of text in which Latin letters match whatever their case ("acme" finds
// "Acme Ltd") and every other byte only itself, so UTF-8 matches whole characters. Built once
// and run over many texts: a listing's ?q= reads every field of a million tickets.
class TextSearch {
 public:
  explicit TextSearch(std::string_view needle);

  bool found_in(std::string_view text) const;
  // The needle with its capitals made small.
  const std::string& needle() const { return needle_; }

 private:
  std::string needle_;
  bool folds_ = false;  // it has a Latin letter: the text's case must be folded to compare
  // Horspool's shift for each byte of the text under the needle's last byte, both cases of a
  // letter alike (capped at 255, which only shortens a shift).
  std::array<uint8_t, 256> shift_{};
};

enum class TextLines { kOne, kMany };

// Control characters (C0, DEL, C1) print as nothing, cut a PDF's line at a NUL and move a
// terminal's cursor when a log or an export is read. One line takes none; many lines take line
// breaks and tabs. Returns what is wrong and where, e.g. "has a line break at character 3: one
// line only", or nullopt when the text is clean.
std::optional<std::string> control_character_in(std::string_view text, TextLines lines);

// Whether the text is nothing but spaces (ASCII whitespace, the no-break space, the ideographic
// space a Chinese input method types): what a required field or a name may not be.
bool blank(std::string_view text);

// The pieces of `text` between such spaces, none empty: the words of a search box's text.
std::vector<std::string_view> words(std::string_view text);

// A phone number as it is stored, or nullopt when the text is none: an optional +, then 5 to 15
// digits (E.164 at most) with spaces, dashes or dots between them, one group of them perhaps in
// parentheses, as landlines write their area code: "(021) 6234 5678". What a Chinese input
// method types in its full-width mode (１３８, ＋, －, （）, the ideographic space) is taken as
// the ASCII it stands for, and stored so: an SMS gateway reads ASCII digits.
std::optional<std::string> phone_number(std::string_view text);

// local@domain.tld: printable ASCII or UTF-8 without spaces, one @, a dot in the domain that is
// neither first nor last.
bool valid_email(std::string_view text);

}  // namespace ticketd
