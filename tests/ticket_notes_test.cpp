// The words on a ticket, and which of them the customer reads.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ticketd
