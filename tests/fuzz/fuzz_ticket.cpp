// A fuzzed request body as ticket commands on the reference application: a submission, then an
// action, a comment and a field change by the right and the wrong people, a close and a reopen,
// and a lookup's answer. decide() answers events or an error; every answer's events must replay
// with evolve().
#include "domain/ticket.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  Value body;
  std::string error;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(data), size), &body, &error))
    return 0;
  const Catalog& catalog = fuzz::reference_catalog();
  Context ctx;
  ctx.catalog = &catalog;
  ctx.now_us = 1795587000000000;
  ctx.lookups.user_exists = [&](std::string_view u, std::string_view role) {
    return active_user_in_role(catalog, u, role);
  };
  ctx.lookups.attachment_type = [](std::string_view) { return std::string(); };
  ctx.lookups.ticket_form = [](std::string_view) { return std::string(); };
  ctx.new_ticket_id = "T-000001";
  TicketState state;
  auto run = [&](const std::string& who, bool admin, const Command& cmd) {
    ctx.actor =
        Actor{who, catalog.user(who) ? catalog.user(who)->roles : std::vector<std::string>{}, admin,
              false, false};
    auto r = decide(state, cmd, ctx);
    if (!r.ok()) {
      if (r.error().code.empty() || r.error().message.empty()) __builtin_trap();
      return;
    }
    for (const auto& e : r.value()) state = evolve(std::move(state), e);
  };
  run("li", false, SubmitTicket{"service_ticket", "service_flow", body["fields"].as_object()});
  run("li", false, SubmitTicket{"service_ticket", "service_flow", body.as_object()});
  for (const char* action : {"approve", "reject", "transfer", "submit", "confirm"}) {
    run("zhang", false,
        TakeAction{action, body["fields"].as_object(), body.string_or("comment"),
                   body.string_or("to")});
  }
  run("li", false, AddComment{body.string_or("comment"), body["public"].as_bool()});
  run("nobody", false, ChangeFields{body["fields"].as_object(), std::nullopt});
  run("admin", true, ChangeFields{body.as_object(), state.version});
  // Closed (as an administrator may), then taken back to a node the body names, by its submitter.
  run("admin", true, CloseTicket{body.string_or("reason")});
  run("li", false, ReopenTicket{body.string_or("reason"), body.string_or("node")});
  // A lookup's answer (from another system: untrusted) on a lookup pending since now.
  if (state.exists()) {
    state.open_requests.push_back({OpenRequest::Kind::kLookup, state.version, {}, {}, 0});
    run("system", false,
        ApplyLookup{state.version, "crm",
                    body["answer"].is_object() ? body["answer"].as_object() : Object{},
                    body.string_or("error")});
  }
  return 0;
}
