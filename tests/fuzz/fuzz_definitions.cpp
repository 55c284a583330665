// Any JSON as a form, a flow, a rule, a calendar, an SLA policy, a print template, a dashboard or
// the company settings: accepted or refused with a message, never a crash; whatever is accepted
// publishes and applies, and an accepted policy or calendar counts a ticket's clocks.
#include "domain/ticket.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  Value doc;
  std::string error;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(data), size), &doc, &error))
    return 0;
  Catalog c = fuzz::reference_catalog();
  auto decide_change = [](const Catalog& c, std::string_view, const Value& doc,
                          const std::string& actor,
                          int64_t now) { return decide_change_settings(c, doc, actor, now); };
  for (auto decide_publish :
       {decide_publish_form, decide_publish_flow, decide_publish_rule, decide_publish_calendar,
        decide_publish_sla_policy, decide_publish_print_template, decide_publish_dashboard,
        +decide_change}) {
    auto r = decide_publish(c, "fuzzed", doc, "fuzz", 0);
    if (!r.ok()) {
      if (r.error().message.empty()) __builtin_trap();
      continue;
    }
    if (r.value() && !c.apply(*r.value())) __builtin_trap();  // accepted must apply
  }
  const SlaPolicyDef* policy = c.sla_policy("fuzzed");
  if (!policy) policy = c.sla_policy("high");
  const CalendarDef* calendar = c.calendar("fuzzed");
  if (!calendar) calendar = c.calendar(policy->calendar_id);
  TicketState t;
  int64_t at = 1795000000LL * 1000000;  // November 2026
  auto event = [&](const char* type, Object data, const char* actor) {
    t = evolve(std::move(t), {type, Value(std::move(data)), actor, at, std::nullopt});
    at += 5400LL * 1000000;
  };
  event("TicketSubmitted", {{"fields", Value(Object{{"priority", Value("高")}})}}, "li");
  event("NodeEntered", {{"node", Value("accept")}}, "li");
  event("CommentAdded", {{"text", Value("?")}}, kPortalActor);
  event("FieldsChanged", {{"fields", Value(Object{{"status", Value("待客户确认")}})}}, "zhang");
  event("CommentAdded", {{"text", Value("!")}, {"public", Value(true)}}, "zhang");
  SlaStatus status = compute_sla(t, *policy, *calendar, at + 86400LL * 1000000 * 30);
  sla_view(status, at);
  return 0;
}
