// The words on a ticket, and which of them the customer reads.
#include <gtest/gtest.h>

#include "domain/catalog.h"
#include "domain/ticket_notes.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

using testing::TicketDriver;

class TicketNotes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow",
                                                 testing::reference_submission()})
                    .ok());
  }
  // The notes among the events a command records.
  std::vector<TicketNote> notes_of(const Actor& actor, const Command& cmd) {
    auto r = t.run(actor, cmd);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<TicketNote> out;
    if (!r.ok()) return out;
    for (const auto& e : r.value()) {
      if (auto note = note_of(e)) out.push_back(*note);
    }
    return out;
  }

  Catalog catalog = testing::reference_catalog();
  TicketDriver t{catalog};
};

TEST_F(TicketNotes, CommentsAreNotesUnlessMadePublic) {
  auto notes = notes_of(t.user("li"), AddComment{"客户脾气急,注意沟通"});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, TicketNote::Kind::kNote);
  EXPECT_FALSE(notes[0].customer_reads());
  EXPECT_EQ(t.events.back().data.find("public"), nullptr);  // as comments were always recorded

  notes = notes_of(t.user("li"), AddComment{"工程师明天上午上门", true});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, TicketNote::Kind::kReply);
  EXPECT_EQ(notes[0].text, "工程师明天上午上门");
  EXPECT_TRUE(notes[0].customer_reads());
  EXPECT_EQ(t.events.back().data["public"], Value(true));
  EXPECT_EQ(to_string(notes[0].kind), "reply");
}

TEST_F(TicketNotes, TheCustomersOwnWordsAreTheirs) {
  auto notes = notes_of(t.customer(), AddComment{"请尽快处理", true});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, TicketNote::Kind::kCustomer);
  EXPECT_TRUE(notes[0].customer_reads());
  EXPECT_EQ(t.events.back().data.find("public"), nullptr);  // the portal has no notes to hide
}

TEST_F(TicketNotes, ActionsCarryNotesWhenSomethingWasWritten) {
  auto notes = notes_of(t.user("zhang"),
                        TakeAction{"approve", {{"complexity", Value("简单")}}, "客服处理即可", ""});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, TicketNote::Kind::kNote);
  EXPECT_EQ(notes[0].text, "客服处理即可");
  EXPECT_TRUE(
      notes_of(t.user("li"), TakeAction{"submit", {{"solution", Value("已远程指导。")}}, "", ""})
          .empty());
  notes = notes_of(t.customer(), TakeAction{"confirm", {}, "好了,谢谢", ""});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, TicketNote::Kind::kCustomer);
  notes = notes_of(t.customer(), RateTicket{5, "很满意"});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].text, "很满意");
}

// "replied" rules: an SMS to the customer when staff answer publicly, a to-do for the supervisor
// when the customer writes. A note among staff triggers neither.
TEST(RepliedRules, FireOnTheCustomersWordsOrOnPublicReplies) {
  Catalog c = testing::reference_catalog();
  testing::publish(c,
                   decide_publish_rule(c, "tell_customer", testing::json(R"({"name":"回复通知客户",
    "form":"service_ticket","trigger":{"type":"replied","by":"staff"},
    "actions":[{"type":"notify","to":{"field":"customer_phone"},"channel":"sms",
                "template":"您的服务单{{ticket.id}}有新回复:{{comment.text}}"}]})"),
                                       "admin", 0));
  testing::publish(c, decide_publish_rule(c, "customer_wrote", testing::json(R"({"name":"客户留言",
    "form":"service_ticket","trigger":{"type":"replied","by":"customer"},
    "actions":[{"type":"notify","to":{"role":"cs_supervisor"},"channel":"todo",
                "template":"客户在{{ticket.id}}留言"}]})"),
                                          "admin", 0));
  TicketDriver t(c);
  ASSERT_TRUE(t.run(t.user("li"),
                    SubmitTicket{"service_ticket", "service_flow", testing::reference_submission()})
                  .ok());
  auto texts = [&](const Actor& actor, const Command& cmd) {
    auto r = t.run(actor, cmd);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<std::string> out;
    if (!r.ok()) return out;
    for (const auto& e : r.value()) {
      if (e.type == event_types::kNotificationRequested) out.push_back(e.data.string_or("text"));
    }
    return out;
  };
  EXPECT_TRUE(texts(t.user("li"), AddComment{"客户脾气急"}).empty());
  EXPECT_EQ(texts(t.user("li"), AddComment{"明天上门", true}),
            std::vector<std::string>{"您的服务单T-000042有新回复:明天上门"});
  EXPECT_EQ(texts(t.customer(), AddComment{"好的"}),
            std::vector<std::string>{"客户在T-000042留言"});
  // A file is a reply as words are, its name what {{comment.text}} says; one kept among staff
  // is a note.
  EXPECT_TRUE(
      texts(t.user("li"), AddAttachment{"a1", "内部记录.pdf", "application/pdf", 10}).empty());
  EXPECT_EQ(texts(t.user("li"), AddAttachment{"a2", "报价单.pdf", "application/pdf", 10, true}),
            std::vector<std::string>{"您的服务单T-000042有新回复:报价单.pdf"});
  EXPECT_EQ(texts(t.customer(), AddAttachment{"a3", "故障照片.jpg", "image/jpeg", 10}),
            std::vector<std::string>{"客户在T-000042留言"});
}

// The customer's link in the SMS the ticket's creation sends them.
TEST(PortalCodeInMessages, FilledFromTheTicket) {
  Catalog c = testing::reference_catalog();
  testing::publish(c, decide_publish_rule(c, "portal_link", testing::json(R"({"name":"进度链接",
    "form":"service_ticket","trigger":{"type":"created"},
    "actions":[{"type":"notify","to":{"field":"customer_phone"},"channel":"sms",
                "template":"查看进度 https://s.example.com/t/{{ticket.id}}?code={{ticket.portal_code}}"}]})"),
                                          "admin", 0));
  TicketDriver t(c);
  auto r = t.run(t.user("li"),
                 SubmitTicket{"service_ticket", "service_flow", testing::reference_submission()});
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::vector<std::string> texts;
  for (const auto& e : r.value()) {
    if (e.data.string_or("rule") == "portal_link") texts.push_back(e.data.string_or("text"));
  }
  EXPECT_EQ(texts,
            std::vector<std::string>{"查看进度 https://s.example.com/t/T-000042?code=pc-secret"});
}

}  // namespace
}  // namespace ticketd
