// Any JSON as a form, a flow or a rule document: accepted or refused with a message, never a crash;
// whatever is accepted publishes and applies.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  Value doc;
  std::string error;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(data), size), &doc, &error))
    return 0;
  Catalog c = fuzz::reference_catalog();
  for (auto decide_publish : {decide_publish_form, decide_publish_flow, decide_publish_rule}) {
    auto r = decide_publish(c, "fuzzed", doc, "fuzz", 0);
    if (!r.ok()) {
      if (r.error().message.empty()) __builtin_trap();
      continue;
    }
    if (r.value() && !c.apply(*r.value())) __builtin_trap();  // accepted must apply
  }
  return 0;
}
