// Changing users: what an administrator's change records, and what a disabled user no longer is
// (picked, notified as a role's member, transferred to).
#include <gtest/gtest.h>

#include <tuple>

#include "domain/catalog.h"
#include "domain/notifications.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

namespace et = event_types;

std::vector<std::string> types_of(const std::vector<DomainEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

std::vector<DomainEvent> change(Catalog& c, const std::string& id, const UserChanges& changes,
                                const std::string& actor = "admin", const std::string& kept = "") {
  auto r = decide_change_user(c, id, changes, actor, 1, kept);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return {};
  for (const auto& e : r.value()) EXPECT_TRUE(c.apply(e));
  return r.value();
}

// A user's version counts the events of its stream, as the log numbers them: it is the ETag a
// PATCH's If-Match is checked against, by the read model and then by the log.
TEST(UserChanges, TheVersionCountsTheEventsOfTheUsersStream) {
  Catalog c = testing::reference_catalog();
  const uint64_t start = c.user("li")->version;
  EXPECT_EQ(start, 1u);  // UserCreated
  UserChanges reset;
  reset.phone = "+86 139 0000 0009";
  reset.password_hash = "$argon2id$…";
  reset.disabled = true;
  EXPECT_EQ(change(c, "li", reset).size(), 3u);
  EXPECT_EQ(c.user("li")->version, start + 3);
  UserChanges same;
  same.phone = "+86 139 0000 0009";
  const uint64_t before = c.user("li")->version;
  EXPECT_TRUE(change(c, "li", same).empty());
  EXPECT_EQ(c.user("li")->version, before);
}

TEST(UserChanges, RecordOnlyWhatDiffers) {
  Catalog c = testing::reference_catalog();
  UserChanges same;
  same.name = c.user("li")->name;
  same.roles = c.user("li")->roles;
  EXPECT_TRUE(change(c, "li", same).empty());

  UserChanges promoted;
  promoted.roles = std::vector<std::string>{"cs_agent", "cs_supervisor"};
  promoted.phone = "+86 139 0000 0002";
  promoted.name = c.user("li")->name;
  auto events = change(c, "li", promoted);
  ASSERT_EQ(types_of(events), std::vector<std::string>{et::kUserUpdated});
  EXPECT_EQ(events[0].data.to_json(),
            R"({"id":"li","phone":"+86 139 0000 0002","roles":["cs_agent","cs_supervisor"]})");
  EXPECT_EQ(c.user("li")->roles, *promoted.roles);
  EXPECT_EQ(c.user("li")->phone, "+86 139 0000 0002");

  UserChanges reset;
  reset.password_hash = "$argon2id$…";
  reset.disabled = true;
  events = change(c, "li", reset, "admin", "hash-of-a-session");
  ASSERT_EQ(types_of(events), (std::vector<std::string>{et::kPasswordChanged, et::kUserDisabled}));
  EXPECT_EQ(events[0].data.string_or("kept_session"), "hash-of-a-session");
  EXPECT_TRUE(c.user("li")->disabled);
  EXPECT_EQ(active_user(c, "li"), nullptr);
  UserChanges back;
  back.disabled = false;
  EXPECT_EQ(types_of(change(c, "li", back)), std::vector<std::string>{et::kUserEnabled});
  EXPECT_NE(active_user(c, "li"), nullptr);
}

TEST(UserChanges, RefusedWithTheReason) {
  Catalog c = testing::reference_catalog();
  auto refused = [&](const std::string& id, const UserChanges& ch, const std::string& actor) {
    auto r = decide_change_user(c, id, ch, actor, 1);
    return r.ok() ? std::string("accepted") : r.error().code + " " + r.error().field;
  };
  UserChanges none;
  EXPECT_EQ(refused("nobody", none, "admin"), "not_found ");
  UserChanges empty_name;
  empty_name.name = "";
  EXPECT_EQ(refused("li", empty_name, "admin"), "required name");
  UserChanges bad_role;
  bad_role.roles = std::vector<std::string>{"客服 主管"};
  EXPECT_EQ(refused("li", bad_role, "admin"), "invalid_value roles");
  UserChanges customer;
  customer.roles = std::vector<std::string>{"cs_agent", "customer"};
  EXPECT_EQ(refused("li", customer, "admin"), "invalid_value roles");
  UserChanges disable;
  disable.disabled = true;
  EXPECT_EQ(refused("zhang", disable, "zhang"), "invalid_value disabled");  // not oneself
  EXPECT_EQ(refused("zhang", disable, "admin"), "accepted");
  // What notifications are sent to, and what a picker and a print-out show.
  const std::string long_name(101, 'x');
  for (auto [member, value, expected] :
       {std::tuple{&UserChanges::name, "李四\n（二）", "invalid_value name"},
        std::tuple{&UserChanges::name, long_name.c_str(), "out_of_range name"},
        std::tuple{&UserChanges::phone, "call me", "invalid_value phone"},
        std::tuple{&UserChanges::phone, "", "accepted"},  // none
        std::tuple{&UserChanges::email, "nope", "invalid_value email"},
        std::tuple{&UserChanges::email, "li@example.com\r\nBCC: x@y.z", "invalid_value email"},
        std::tuple{&UserChanges::email, "li.si@example.com.cn", "accepted"}}) {
    UserChanges ch;
    ch.*member = value;
    EXPECT_EQ(refused("li", ch, "admin"), expected) << value;
  }
}

TEST(NewUsers, AreRefusedWithTheReason) {
  Catalog c = testing::reference_catalog();
  auto created = [&](User u) {
    auto r = decide_create_user(c, u, "$argon2id$…", "admin", 1);
    return r.ok() ? std::string("accepted") : r.error().code + " " + r.error().field;
  };
  EXPECT_EQ(created({"ma", "马工", {"engineer"}, "+86 138 0000 0007", "ma@example.com"}),
            "accepted");
  EXPECT_EQ(created({"ma", "马工", {"engineer"}, "", ""}), "accepted");
  EXPECT_EQ(created({"ma", "", {"engineer"}, "", ""}), "required name");
  EXPECT_EQ(created({"ma", "\xE3\x80\x80 ", {"engineer"}, "", ""}), "required name");
  EXPECT_EQ(created({"ma", "马\x1b工", {"engineer"}, "", ""}), "invalid_value name");
  EXPECT_EQ(created({"ma", "马工", {"engineer"}, "138", ""}), "invalid_value phone");
  EXPECT_EQ(created({"ma", "马工", {"engineer"}, "", "ma at example"}), "invalid_value email");
  EXPECT_EQ(created({"li", "李四", {"engineer"}, "", ""}), "conflict id");
  EXPECT_EQ(created({"Li", "大写李", {"engineer"}, "", ""}), "conflict id");  // case alone
  // "." and ".." would be resolved away in /users/{id} by clients.
  EXPECT_EQ(created({"..", "点", {"engineer"}, "", ""}), "invalid_value id");
  EXPECT_EQ(created({".", "点", {"engineer"}, "", ""}), "invalid_value id");
  EXPECT_EQ(created({"m.a", "马工", {"engineer"}, "", ""}), "accepted");
  EXPECT_EQ(created({"ma", "马工", {".."}, "", ""}), "invalid_value roles");
  EXPECT_EQ(created({"ma", "马工", {"engineer", "engineer"}, "", ""}), "invalid_value roles");
  // The customer acts through the portal; as an account it would read every ticket as staff.
  EXPECT_EQ(created({"kehu", "客户", {"customer"}, "", ""}), "invalid_value roles");
}

TEST(DisabledUsers, AreNeitherPickedNorNotifiedNorTransferredTo) {
  Catalog c = testing::reference_catalog();
  UserChanges disable;
  disable.disabled = true;
  change(c, "zhao", disable);

  PendingNotification n;
  n.channel = "sms";
  n.recipient = "role";
  n.to = "engineer";
  auto to = resolve_recipients(n, c);
  ASSERT_TRUE(to.ok());
  EXPECT_EQ(to.value(), std::vector<std::string>{c.user("qian")->phone});  // zhao's left out
  n.recipient = "user";
  n.to = "zhao";
  EXPECT_FALSE(resolve_recipients(n, c).ok());

  testing::TicketDriver t(c);
  ASSERT_TRUE(t.run(t.user("li"),
                    SubmitTicket{"service_ticket", "service_flow", testing::reference_submission()})
                  .ok());
  ASSERT_TRUE(
      t.run(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("复杂")}}, "", ""}).ok());
  auto r = t.run(t.user("wang"), TakeAction{"approve", {{"engineer", Value("zhao")}}, "", ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "工程师 (engineer): no active user \"zhao\" with role engineer");
  EXPECT_EQ(r.error().field, "engineer");
  ASSERT_TRUE(
      t.run(t.user("wang"), TakeAction{"approve", {{"engineer", Value("qian")}}, "", ""}).ok());
  r = t.run(t.user("qian"), TakeAction{"transfer", {}, "", "zhao"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "user zhao is disabled");
}

}  // namespace
}  // namespace ticketd
