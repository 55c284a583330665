// Any bytes: parsing never crashes, and what parses writes back to JSON that parses to the same.
#include <cstdint>
#include <string_view>

#include "domain/value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  Value v;
  std::string error;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(data), size), &v, &error))
    return 0;
  Value again;
  if (!parse_json(v.to_json(), &again, &error) || !(again == v)) __builtin_trap();
  return 0;
}
