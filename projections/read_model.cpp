#include "projections/read_model.h"

#include <cstdio>

#include "domain/json_writer.h"
#include "domain/time_format.h"

namespace ticketd::projections {

bool to_domain_event(const storage::RecordedEvent& e, DomainEvent* out) {
  std::string error;
  out->type = std::string(e.type());
  out->actor = std::string(e.actor());
  out->at_us = e.recorded_at_us();
  out->id = e.id();
  return parse_json(e.payload(), &out->data, &error);
}

uint64_t ticket_number(std::string_view id) {
  if (id.size() < 3 || id.substr(0, 2) != "T-") return 0;
  uint64_t n = 0;
  for (char c : id.substr(2)) {
    if (c < '0' || c > '9' || n > 1000000000000ULL) return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::string ticket_id_for(uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "T-%06llu", static_cast<unsigned long long>(number));
  return buf;
}

const TicketState* ReadModel::View::ticket(std::string_view id) const {
  auto it = tickets.find(std::string(id));
  return it == tickets.end() ? nullptr : &it->second;
}

uint64_t ReadModel::applied_position() const {
  std::shared_lock lk(mu_);
  return applied_;
}

void ReadModel::when_applied(uint64_t p, std::function<void()> fn) {
  {
    std::lock_guard wl(waiters_mu_);
    std::shared_lock lk(mu_);
    if (applied_ < p) {
      waiters_.emplace(p, std::move(fn));
      return;
    }
  }
  fn();
}

void ReadModel::apply(const storage::RecordedEvent& recorded) {
  DomainEvent e;
  bool parsed = to_domain_event(recorded, &e);
  {
    std::unique_lock lk(mu_);
    applied_ = recorded.position();
    if (parsed) {
      std::string_view stream = recorded.stream();
      if (stream.substr(0, 7) == "ticket-") {
        std::string id(stream.substr(7));
        TicketState& t = tickets_[id];
        t = evolve(std::move(t), e);
        if (e.type == ticketd::event_types::kTicketSubmitted) {
          max_ticket_number_ = std::max(max_ticket_number_, ticket_number(id));
          std::string key = e.data.string_or("idempotency_key");
          if (!key.empty()) idempotency_[key] = id;
        }
      } else if (e.type == ticketd::event_types::kUserCreated) {
        catalog_.apply(e);
        password_hashes_[e.data.string_or("id")] = e.data.string_or("password_hash");
      } else if (e.type == event_types::kSessionStarted) {
        sessions_[e.data.string_or("token_hash")] = e.data.string_or("user");
      } else if (e.type == event_types::kAttachmentUploaded) {
        AttachmentInfo a{e.data.string_or("id"), e.data.string_or("filename"),
                         e.data.string_or("content_type"),
                         static_cast<uint64_t>(e.data["size"].as_number()), e.actor};
        attachments_[a.id] = a;
      } else {
        catalog_.apply(e);
      }
    }
  }
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard wl(waiters_mu_);
    auto end = waiters_.upper_bound(recorded.position());
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
  }
  for (auto& fn : ready) fn();
}

std::string ReadModel::dump() const {
  std::shared_lock lk(mu_);
  std::string out;
  auto line = [&](JsonWriter& w) {
    out += w.take();
    out.push_back('\n');
  };
  for (const std::string& id : catalog_.form_ids()) {
    for (uint64_t v = 1; const FormDef* f = catalog_.form(id, v); ++v) {
      JsonWriter w;
      w.begin_object()
          .key("form")
          .string(id)
          .key("version")
          .number(v)
          .key("document")
          .raw(f->document.to_json())
          .end_object();
      line(w);
    }
  }
  for (const std::string& id : catalog_.flow_ids()) {
    for (uint64_t v = 1; const FlowDef* f = catalog_.flow(id, v); ++v) {
      JsonWriter w;
      w.begin_object()
          .key("flow")
          .string(id)
          .key("version")
          .number(v)
          .key("document")
          .raw(f->document.to_json())
          .end_object();
      line(w);
    }
  }
  for (const std::string& id : catalog_.rule_ids()) {
    for (uint64_t v = 1; const RuleDef* r = catalog_.rule(id, v); ++v) {
      JsonWriter w;
      w.begin_object()
          .key("rule")
          .string(id)
          .key("version")
          .number(v)
          .key("document")
          .raw(r->document.to_json())
          .end_object();
      line(w);
    }
  }
  for (const User* u : catalog_.users()) {
    JsonWriter w;
    w.begin_object()
        .key("user")
        .string(u->id)
        .key("name")
        .string(u->name)
        .key("roles")
        .begin_array();
    for (const auto& r : u->roles) w.string(r);
    w.end_array().end_object();
    line(w);
  }
  for (const auto& [id, t] : tickets_) {
    JsonWriter w;
    w.begin_object();
    w.key("ticket").string(id);
    w.key("version").number(t.version);
    w.key("form").string(t.form_id).key("form_version").number(t.form_version);
    w.key("flow").string(t.flow_id).key("flow_version").number(t.flow_version);
    w.key("node").string(t.node);
    w.key("closed").boolean(t.closed);
    w.key("creator").string(t.creator);
    w.key("assignees").begin_array();
    for (const auto& a : t.assignees) w.string(a.id);
    w.end_array();
    w.key("fields").raw(Value(t.fields).to_json());
    w.key("created_at").number(t.created_at).key("updated_at").number(t.updated_at);
    w.key("first_response_at").number(t.first_response_at).key("closed_at").number(t.closed_at);
    w.key("timeline").begin_array();
    for (const auto& step : t.timeline) {
      w.begin_array().string(step.node).number(step.entered_at).number(step.left_at).end_array();
    }
    w.end_array();
    w.key("rating").number(static_cast<int64_t>(t.rating.value_or(0)));
    w.key("fcr").boolean(t.first_contact_resolution());
    w.end_object();
    line(w);
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : attachments_) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  for (const auto& k : keys) {
    const auto& a = attachments_.at(k);
    JsonWriter w;
    w.begin_object()
        .key("attachment")
        .string(a.id)
        .key("filename")
        .string(a.filename)
        .key("size")
        .number(a.size)
        .end_object();
    line(w);
  }
  return out;
}

}  // namespace ticketd::projections
