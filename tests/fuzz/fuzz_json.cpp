// Any bytes: put in a value by code, they write as JSON; parsing never crashes, and what parses
// writes back to JSON that parses to the same; every place in it is found again by its RFC 6901
// pointer (as a lookup's fill finds a value in an answer from another system, which is untrusted
// input).
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "domain/rule.h"
#include "domain/value.h"

namespace {

std::string escaped(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

// Checks each place under `at` (up to `budget` of them), `pointer` naming `at` in `root`.
void check_pointers(const ticketd::Value& root, const ticketd::Value& at,
                    const std::string& pointer, int& budget) {
  if (--budget < 0) return;
  if (ticketd::resolve_pointer(root, pointer) != &at) __builtin_trap();
  if (at.is_object()) {
    std::set<std::string> seen;  // a repeated key: the pointer names its first occurrence
    for (const auto& [k, v] : at.as_object()) {
      if (seen.insert(k).second) check_pointers(root, v, pointer + "/" + escaped(k), budget);
    }
  } else if (at.is_array()) {
    for (size_t i = 0; i < at.as_array().size(); ++i) {
      check_pointers(root, at.as_array()[i], pointer + "/" + std::to_string(i), budget);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string error;
  // Text made by the server itself (a title cut to length, a template filled in) may be any bytes:
  // written as a key and as a value, it is still JSON, which the log takes unchecked.
  // When to_json says the text is exact, it reads back as the very value (a live subscriber takes
  // the value in place of parsing the payload: NewEvent::payload_value).
  Value made(Object{{std::string(bytes), Value(bytes)}});
  Value reread;
  bool exact = false;
  if (!parse_json(made.to_json(0, &exact), &reread, &error)) __builtin_trap();
  if (exact && !(reread == made)) __builtin_trap();
  Value v;
  if (!parse_json(bytes, &v, &error)) return 0;
  Value again;
  if (!parse_json(v.to_json(), &again, &error) || !(again == v)) __builtin_trap();
  int budget = 2000;
  check_pointers(v, v, "", budget);
  return 0;
}
