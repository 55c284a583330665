#include "server/demo.h"

#include <sodium.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>

#include "api/call.h"
#include "domain/catalog.h"

namespace ticketd::server {
namespace {

bool read_json(const std::string& path, Value* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (!parse_json(ss.str(), out, error, kMaxInputJsonDepth)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Appends and waits until the read model has applied the events.
bool commit(storage::EventLog& log, projections::ReadModel& model, const std::string& stream,
            storage::ExpectedVersion expected, const DomainEvent& e, std::string* error) {
  auto result =
      log.append(stream, expected, {projections::to_new_event(e, api::random_event_id(), "demo")});
  if (!result.status.ok()) {
    *error = stream + ": " + result.status.ToString();
    return false;
  }
  std::promise<void> applied;
  model.when_applied(result.last_position, [&] { applied.set_value(); });
  applied.get_future().wait();
  return true;
}

}  // namespace

bool load_reference_app(const std::string& dir, storage::EventLog& log,
                        projections::ReadModel& model, std::vector<DemoLogin>* logins,
                        std::string* error) {
  using View = projections::ReadModel::View;
  Value users;
  if (!read_json(dir + "/users.json", &users, error)) return false;
  for (const auto& u : users["users"].as_array()) {
    User user{
        u.string_or("id"), u.string_or("name"), {}, u.string_or("phone"), u.string_or("email")};
    std::string roles;
    for (const auto& r : u["roles"].as_array()) {
      user.roles.push_back(r.as_string());
      roles += (roles.empty() ? "" : ",") + r.as_string();
    }
    std::string password = u.string_or("password");
    auto [exists, disabled] = model.read([&](const View& v) {
      const User* existing = v.catalog.user(user.id);
      return std::pair{existing != nullptr, existing && existing->disabled};
    });
    // (An administrator may have disabled a demo user since: not offered as a login then.)
    if (!disabled) logins->push_back({user.id, user.name, roles, password});
    if (exists) continue;
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password.data(), password.size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
      *error = "out of memory hashing a password";
      return false;
    }
    auto e = model.read(
        [&](const View& v) { return decide_create_user(v.catalog, user, hash, "demo", now_us()); });
    if (!e.ok()) {
      *error = "user " + user.id + ": " + e.error().message;
      return false;
    }
    if (!commit(log, model, "user-" + user.id, storage::ExpectedVersion::NoStream(), e.value(),
                error))
      return false;
  }

  // Definitions in the order they depend on each other: a policy names a calendar and nodes of a
  // flow; each kind by its file suffix, in name order.
  struct Doc {
    std::string kind;
    std::string id;
    std::string file;
  };
  static const std::pair<const char*, const char*> kKinds[] = {
      {"form", ".form.json"},          {"flow", ".flow.json"}, {"calendar", ".calendar.json"},
      {"sla-policy", ".sla.json"},     {"rule", ".rule.json"}, {"print-template", ".print.json"},
      {"dashboard", ".dashboard.json"}};
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<Doc> docs;
  for (const auto& [kind, suffix] : kKinds) {
    std::string_view sfx = suffix;
    for (const auto& n : names) {
      if (n.ends_with(sfx)) docs.push_back({kind, n.substr(0, n.size() - sfx.size()), n});
    }
  }
  for (const auto& d : docs) {
    // A definition an administrator has published since the demo did is theirs: a restart with
    // --demo (the README's first command) neither reverts it nor fails over it. One the demo
    // published last is brought up to this build's file.
    const std::string stream = d.kind + "-" + d.id;
    if (uint64_t head = log.stream_head(stream)) {
      std::string last_actor;
      storage::Status read = log.read_stream(stream, head, 1, [&](const storage::RecordedEvent& e) {
        last_actor = e.actor();
        return false;
      });
      if (!read.ok()) {
        *error = stream + ": " + read.ToString();
        return false;
      }
      if (last_actor != "demo") continue;
    }
    Value doc;
    if (!read_json(dir + "/" + d.file, &doc, error)) return false;
    const std::string& kind = d.kind;
    auto decided = model.read([&](const View& v) {
      if (kind == "form") return decide_publish_form(v.catalog, d.id, doc, "demo", now_us());
      if (kind == "flow") return decide_publish_flow(v.catalog, d.id, doc, "demo", now_us());
      if (kind == "calendar")
        return decide_publish_calendar(v.catalog, d.id, doc, "demo", now_us());
      if (kind == "sla-policy")
        return decide_publish_sla_policy(v.catalog, d.id, doc, "demo", now_us());
      if (kind == "print-template")
        return decide_publish_print_template(v.catalog, d.id, doc, "demo", now_us());
      if (kind == "dashboard")
        return decide_publish_dashboard(v.catalog, d.id, doc, "demo", now_us());
      return decide_publish_rule(v.catalog, d.id, doc, "demo", now_us());
    });
    if (!decided.ok()) {
      *error = d.file + ": " + decided.error().message;
      return false;
    }
    if (!decided.value()) continue;  // loaded already, unchanged
    uint64_t version = static_cast<uint64_t>((*decided.value()).data["version"].as_number());
    if (!commit(log, model, stream, storage::ExpectedVersion::Exact(version - 1), *decided.value(),
                error)) {
      return false;
    }
  }
  return true;
}

}  // namespace ticketd::server
