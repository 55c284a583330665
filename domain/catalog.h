#pragma once
// Everything definitions: forms, flows, rules, calendars, SLA policies, print templates and
// dashboards at every published version, and the users with their roles. Built only by applying
// events (FormPublished, FlowPublished, …, UserCreated), so it is the same live and after a replay.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/dashboard.h"
#include "domain/error.h"
#include "domain/event.h"
#include "domain/flow.h"
#include "domain/form.h"
#include "domain/print_template.h"
#include "domain/rule.h"
#include "domain/settings.h"
#include "domain/sla.h"

namespace ticketd {

struct User {
  std::string id;
  std::string name;
  std::vector<std::string> roles;
  std::string phone;
  std::string email;
  // Left the company, or locked out: cannot sign in, its sessions are ended, and it is no longer
  // picked, notified as a role's member, transferred to or put in a person field. What it did
  // stays on the record under its id.
  bool disabled = false;
  // How many events its stream ("user-<id>") holds: the user's ETag, as a ticket's is its.
  uint64_t version = 0;
};

namespace event_types {
inline constexpr char kFormPublished[] = "FormPublished";
inline constexpr char kFlowPublished[] = "FlowPublished";
inline constexpr char kRulePublished[] = "RulePublished";
inline constexpr char kUserCreated[] = "UserCreated";
inline constexpr char kUserUpdated[] = "UserUpdated";  // the members changed: name, roles, …
inline constexpr char kPasswordChanged[] = "PasswordChanged";
inline constexpr char kUserDisabled[] = "UserDisabled";
inline constexpr char kUserEnabled[] = "UserEnabled";
inline constexpr char kCalendarPublished[] = "CalendarPublished";
inline constexpr char kSlaPolicyPublished[] = "SlaPolicyPublished";
inline constexpr char kPrintTemplatePublished[] = "PrintTemplatePublished";
inline constexpr char kDashboardPublished[] = "DashboardPublished";
inline constexpr char kSettingsChanged[] = "SettingsChanged";  // the company settings
}  // namespace event_types

class Catalog {
 public:
  // Applies a definition event; other events are ignored. Returns false when the event's document
  // does not parse (possible only for a log written by a different program).
  bool apply(const DomainEvent& e);

  // version 0: the latest.
  const FormDef* form(std::string_view id, uint64_t version = 0) const;
  const FlowDef* flow(std::string_view id, uint64_t version = 0) const;
  const RuleDef* rule(std::string_view id, uint64_t version = 0) const;
  const CalendarDef* calendar(std::string_view id, uint64_t version = 0) const;
  const SlaPolicyDef* sla_policy(std::string_view id, uint64_t version = 0) const;
  const PrintTemplateDef* print_template(std::string_view id, uint64_t version = 0) const;
  const DashboardDef* dashboard(std::string_view id, uint64_t version = 0) const;
  // The company settings now (defaults, at version 0, before any change), and at a version.
  const CompanySettings& settings() const;
  const CompanySettings* settings_at(uint64_t version) const;
  // The latest version of every enabled SLA policy of a form, in id order.
  const std::vector<const SlaPolicyDef*>& sla_policies_for_form(std::string_view form_id) const;
  // The latest version of every enabled rule of a form, in id order.
  const std::vector<const RuleDef*>& rules_for_form(std::string_view form_id) const;
  std::vector<std::string> form_ids() const;
  std::vector<std::string> flow_ids() const;
  std::vector<std::string> rule_ids() const;
  std::vector<std::string> calendar_ids() const;
  std::vector<std::string> sla_policy_ids() const;
  std::vector<std::string> print_template_ids() const;
  std::vector<std::string> dashboard_ids() const;

  const User* user(std::string_view id) const;
  std::vector<const User*> users() const;

 private:
  template <typename T>
  using Versions = std::map<std::string, std::vector<std::shared_ptr<const T>>, std::less<>>;
  Versions<FormDef> forms_;
  Versions<FlowDef> flows_;
  Versions<RuleDef> rules_;
  Versions<CalendarDef> calendars_;
  Versions<SlaPolicyDef> sla_policies_;
  Versions<PrintTemplateDef> print_templates_;
  Versions<DashboardDef> dashboards_;
  std::map<std::string, User, std::less<>> users_;
  std::vector<std::shared_ptr<const CompanySettings>> settings_;
  // The two above by form, asked for on every event of every command and every applied event;
  // rebuilt whenever a rule or an SLA policy is published.
  std::map<std::string, std::vector<const RuleDef*>, std::less<>> rules_by_form_;
  std::map<std::string, std::vector<const SlaPolicyDef*>, std::less<>> sla_policies_by_form_;
};

// Whether `field` is a select field of form `form` ("": of some form), at its latest version: what
// the reports count by (by_problem_type's field). `replacing`: a version of one of the forms to
// ask instead of its latest (one about to be published).
bool is_select_field(const Catalog& c, std::string_view form, std::string_view field,
                     const FormDef* replacing = nullptr);

// Whether some flow of form `form_id` ("": of any form) has a node `node`: at its latest version,
// or at any (a ticket may sit at a node a later version dropped).
enum class FlowVersions { kLatest, kEvery };
bool form_has_node(const Catalog& c, std::string_view form_id, std::string_view node,
                   FlowVersions versions = FlowVersions::kLatest);

// parse_rule, and also that a node the trigger names is a node of a flow of the form: what
// publishing a rule checks, and a dry run of a draft.
Result<RuleDef> parse_rule_in_catalog(const Catalog& c, std::string_view id, const Value& document,
                                      const FormDef& form);

// A definition document as stored: without the "id" and "version" a client may echo back from GET.
Value strip_identity(const Value& document);

// Publishing: the event that publishes a new version, nothing when the document equals the
// current version, or an error naming the problem.
Result<std::optional<DomainEvent>> decide_publish_form(const Catalog& c, std::string_view id,
                                                       const Value& document,
                                                       const std::string& actor, int64_t now_us);
Result<std::optional<DomainEvent>> decide_publish_flow(const Catalog& c, std::string_view id,
                                                       const Value& document,
                                                       const std::string& actor, int64_t now_us);
// Also checks that a node_entered or idle trigger names a node of a flow of the form.
Result<std::optional<DomainEvent>> decide_publish_rule(const Catalog& c, std::string_view id,
                                                       const Value& document,
                                                       const std::string& actor, int64_t now_us);
Result<std::optional<DomainEvent>> decide_publish_calendar(const Catalog& c, std::string_view id,
                                                           const Value& document,
                                                           const std::string& actor,
                                                           int64_t now_us);
// Also checks that the calendar exists and that every node named is a node of a flow of the form.
Result<std::optional<DomainEvent>> decide_publish_sla_policy(const Catalog& c, std::string_view id,
                                                             const Value& document,
                                                             const std::string& actor,
                                                             int64_t now_us);
// Also checks the fields named against the form's latest version.
Result<std::optional<DomainEvent>> decide_publish_print_template(const Catalog& c,
                                                                 std::string_view id,
                                                                 const Value& document,
                                                                 const std::string& actor,
                                                                 int64_t now_us);
// Also checks that every form a widget names exists, and that a widget's field is a select field
// of it (of some form, for a widget of every form).
Result<std::optional<DomainEvent>> decide_publish_dashboard(const Catalog& c, std::string_view id,
                                                            const Value& document,
                                                            const std::string& actor,
                                                            int64_t now_us);
// A new version of the company settings (domain/settings.h), nothing when the document equals
// the current one, or an error naming the problem.
Result<std::optional<DomainEvent>> decide_change_settings(const Catalog& c, const Value& document,
                                                          const std::string& actor, int64_t now_us);
// `password_hash` is opaque here (the API hashes); it is kept in the event, never shown.
Result<DomainEvent> decide_create_user(const Catalog& c, const User& user,
                                       const std::string& password_hash, const std::string& actor,
                                       int64_t now_us);

// What an administrator changes about a user (absent: unchanged).
struct UserChanges {
  std::optional<std::string> name, phone, email;
  std::optional<std::vector<std::string>> roles;
  std::optional<bool> disabled;
  std::optional<std::string> password_hash;  // a new password, hashed
};
// The events of a change, in this order: UserUpdated (with only the members that differ),
// PasswordChanged, UserDisabled or UserEnabled; none when nothing differs. A password change
// ends the user's sessions but `kept_session` (a token hash: the one changing their own
// password stays signed in). Nobody disables their own account.
Result<std::vector<DomainEvent>> decide_change_user(const Catalog& c, std::string_view id,
                                                    const UserChanges& changes,
                                                    const std::string& actor, int64_t now_us,
                                                    const std::string& kept_session = "");
// The user, when it exists and is not disabled.
const User* active_user(const Catalog& c, std::string_view id);
// Whether the user can act on a to-do: not disabled, and not an auditor (who changes nothing).
// Only such users are handed tickets: picked, transferred to, or counted as staffing a role.
bool may_hold_todo(const User& u);
// An active user holding `role` (any user when it is ""): what a person field may hold.
bool active_user_in_role(const Catalog& c, std::string_view id, std::string_view role);

}  // namespace ticketd
