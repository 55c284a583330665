// Any JSON as a condition on the reference form, evaluated against fuzzed field values.
#include "domain/condition.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  Value input;
  std::string error;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(data), size), &input, &error))
    return 0;
  const FormDef& form = *fuzz::reference_catalog().form("service_ticket");
  // {"when": <condition>, "fields": {…}} or just a condition.
  const Value& when = input.find("when") ? input["when"] : input;
  auto c = parse_condition(when, form, "when");
  if (!c.ok()) return 0;
  evaluate(c.value(), input["fields"].as_object());
  std::vector<std::string> keys;
  condition_fields(c.value(), &keys);
  for (const auto& k : keys) {
    if (!form.field(k)) __builtin_trap();  // a parsed condition only names fields of the form
  }
  return 0;
}
