// The outbox's pure part: what is pending, who a notification goes to, when a failure is retried.
#include <gtest/gtest.h>

#include "domain/notifications.h"
#include "domain/time_format.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

namespace et = event_types;

DomainEvent requested(const std::string& channel, const std::string& to,
                      const std::string& recipient) {
  return {et::kNotificationRequested,
          Value(Object{{"rule", Value("r")},
                       {"channel", Value(channel)},
                       {"to", Value(to)},
                       {"recipient", Value(recipient)},
                       {"text", Value("您的服务单已受理")}}),
          kSystemActor, 1'000'000, std::nullopt};
}

TEST(NotificationQueue, KeepsTheDeliveredChannelsUntilAFinalOutcome) {
  NotificationQueue q({"sms", "email"});
  q.apply("ticket-T-000001", 10, requested("sms", "+86 138", "phone"));
  q.apply("ticket-T-000001", 11, requested("todo", "cs_supervisor", "role"));  // the inbox's
  q.apply("ticket-T-000001", 12, requested("webhook", "zhang", "user"));       // no transport
  q.apply("user-zhang", 13, requested("sms", "+86 139", "phone"));             // not a ticket's
  ASSERT_EQ(q.pending().size(), 1u);
  const PendingNotification& n = q.pending().at(10);
  EXPECT_EQ(n.ticket, "T-000001");
  EXPECT_EQ(n.requested_at, 1'000'000);

  RetryPolicy policy;
  DomainEvent failed = failed_event(n, "HTTP 503", false, policy, 2'000'000);
  EXPECT_EQ(failed.data["attempt"], Value(1));
  EXPECT_EQ(failed.data["final"], Value(false));
  EXPECT_EQ(failed.data.string_or("retry_at"), format_rfc3339(2'000'000 + 5'000'000));
  EXPECT_EQ(q.apply("ticket-T-000001", 20, failed), 0u);  // outcomes count on the outbox only
  EXPECT_EQ(q.apply(kOutboxStream, 20, failed), 10u);
  EXPECT_EQ(q.pending().at(10).attempts, 1);
  EXPECT_EQ(q.pending().at(10).next_at, 7'000'000);
  EXPECT_EQ(q.next_due(6'999'999, {}), nullptr);
  EXPECT_EQ(q.next_due(7'000'000, {})->request, 10u);
  EXPECT_EQ(q.next_due(7'000'000, {10}), nullptr);  // being sent already
  EXPECT_EQ(q.earliest({}), 7'000'000);

  // Each failure doubles the wait; the last allowed attempt is final.
  PendingNotification later = q.pending().at(10);
  later.attempts = 3;
  EXPECT_EQ(failed_event(later, "x", false, policy, 0).data.string_or("retry_at"),
            format_rfc3339(40'000'000));
  later.attempts = policy.max_attempts - 1;
  EXPECT_EQ(failed_event(later, "x", false, policy, 0).data["final"], Value(true));
  EXPECT_EQ(failed_event(n, "no such user", true, policy, 0).data["final"], Value(true));

  // Snapshot round trip, then delivery settles it.
  NotificationQueue copy({"sms", "email"});
  ASSERT_TRUE(copy.from_value(q.to_value()));
  EXPECT_EQ(copy.pending(), q.pending());
  DomainEvent delivered = delivered_event(q.pending().at(10), {"+86 138"}, 8'000'000);
  EXPECT_EQ(q.apply(kOutboxStream, 21, delivered), 10u);
  EXPECT_TRUE(q.pending().empty());
  EXPECT_EQ(q.earliest({}), 0);
}

TEST(NotificationQueue, OutcomeIdsDeriveFromTheRequestAndAttempt) {
  PendingNotification n;
  n.request = 42;
  RetryPolicy policy;
  EXPECT_EQ(*delivered_event(n, {}, 1).id, *delivered_event(n, {}, 2).id);
  EXPECT_EQ(*failed_event(n, "a", false, policy, 1).id, *failed_event(n, "b", false, policy, 2).id);
  PendingNotification again = n;
  again.attempts = 1;
  EXPECT_NE(*failed_event(n, "a", false, policy, 1).id,
            *failed_event(again, "a", false, policy, 1).id);
  EXPECT_NE(*failed_event(n, "a", false, policy, 1).id, *delivered_event(n, {}, 1).id);
  // A ticket's notifications are found by these ids: the ones recorded, in every log written
  // since the outbox began, so they may never change.
  EXPECT_EQ(*delivered_event(n, {}, 1).id, delivered_event_id(42));
  EXPECT_EQ(*failed_event(again, "a", false, policy, 1).id, failed_event_id(42, 2));
  EXPECT_EQ(delivered_event_id(42).to_string(), "384a1d0f-fc1f-8eea-bf5b-125ae435d4ac");
  EXPECT_EQ(failed_event_id(42, 2).to_string(), "c292570b-f222-81e1-9a3b-c1be15699325");
}

TEST(NotificationState, FromTheChannelTheOutcomesAndTheOutbox) {
  PendingNotification n;
  n.request = 7;
  n.channel = "sms";
  RetryPolicy policy;
  const DomainEvent retry = failed_event(n, "HTTP 503", false, policy, 1);
  const DomainEvent final_failure = failed_event(n, "HTTP 400", true, policy, 2);
  const DomainEvent delivered = delivered_event(n, {"+86 138"}, 3);
  using S = NotificationState;
  EXPECT_EQ(notification_state("todo", nullptr, false), S::kInbox);
  EXPECT_EQ(notification_state("sms", nullptr, true), S::kPending);
  EXPECT_EQ(notification_state("sms", &retry, true), S::kPending);
  EXPECT_EQ(notification_state("sms", &delivered, true), S::kDelivered);
  EXPECT_EQ(notification_state("sms", &delivered, false), S::kDelivered);
  EXPECT_EQ(notification_state("email", &final_failure, false), S::kFailed);
  EXPECT_EQ(notification_state("email", &final_failure, true), S::kFailed);  // not yet applied
  EXPECT_EQ(notification_state("webhook", nullptr, false), S::kNotSent);
  EXPECT_EQ(notification_state("webhook", &retry, false), S::kNotSent);  // no outbox here now
  // What a live watcher of the ticket is told: no address, no error.
  EXPECT_EQ(notification_outcome(retry).to_json(),
            R"({"request":7,"channel":"sms","attempt":1,"status":"pending"})");
  EXPECT_EQ(notification_outcome(final_failure).to_json(),
            R"({"request":7,"channel":"sms","attempt":1,"status":"failed"})");
  EXPECT_EQ(notification_outcome(delivered)["status"], Value("delivered"));
  EXPECT_EQ(to_string(S::kNotSent), "not_sent");
  EXPECT_EQ(to_string(S::kDelivered), "delivered");
}

TEST(NotificationRecipients, AddressUserOrEveryMemberOfTheRole) {
  Catalog c = testing::reference_catalog();
  PendingNotification n;
  n.channel = "sms";
  n.recipient = "phone";
  n.to = "+86 138 1234 5678";
  EXPECT_EQ(resolve_recipients(n, c).value(), std::vector<std::string>{"+86 138 1234 5678"});
  n.recipient = "user";
  n.to = "zhao";
  EXPECT_EQ(resolve_recipients(n, c).value(), std::vector<std::string>{c.user("zhao")->phone});
  n.channel = "email";
  n.recipient = "role";
  n.to = "engineer";  // 赵六 and 钱七
  EXPECT_EQ(resolve_recipients(n, c).value(),
            (std::vector<std::string>{c.user("qian")->email, c.user("zhao")->email}));
  n.to = "nobody";
  EXPECT_FALSE(resolve_recipients(n, c).ok());
  n.recipient = "user";
  n.to = "audit";  // no e-mail address
  EXPECT_NE(resolve_recipients(n, c).error().message.find("has no e-mail address"),
            std::string::npos);
  n.recipient = "email";
  n.to = "";
  EXPECT_FALSE(resolve_recipients(n, c).ok());
}

}  // namespace
}  // namespace ticketd
