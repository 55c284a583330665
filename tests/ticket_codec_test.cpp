// Snapshot encoding of ticket states: every member comes back exactly, and damaged bytes are
// refused rather than misread.
#include "projections/ticket_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

namespace ticketd::projections {
namespace {

TicketState every_member_set() {
  TicketState t;
  t.id = "T-000042";
  t.version = 17;
  t.form_id = "service_ticket";
  t.form_version = 3;
  t.flow_id = "after_sales";
  t.flow_version = 2;
  t.creator = "客户-王";
  t.portal_code = "p-9f3a";
  t.closed = true;
  t.flow_ended = true;
  t.node = "customer_confirm";
  t.assignees = {{AssigneeSpec::Kind::kRole, "engineer"}, {AssigneeSpec::Kind::kUser, "li"}};
  t.node_entered_version = 12;
  t.node_entered_at = 1'764'000'000'123'456;
  t.timers_fired = {"idle:remind", "idle:escalate"};
  t.fields = Object{{"title", Value("打印机卡纸")},
                    {"priority", Value("high")},
                    {"count", Value(-2.5)},
                    {"empty", Value("")},
                    {"missing", Value()},
                    {"flags", Value(Array{Value(true), Value(false), Value(1e300)})},
                    {"address", Value(Object{{"city", Value("上海")}, {"zip", Value("200000")}})}};
  t.created_at = 1'764'000'000'000'000;
  t.updated_at = 1'764'000'900'000'000;
  t.first_response_at = 1'764'000'100'000'000;
  t.closed_at = 1'764'000'800'000'000;
  t.timeline = {{"accept", 1, 2}, {"engineer", 2, 0}};
  t.rejected = true;
  t.transferred = false;
  t.reentered = true;
  t.reopens = 2;
  t.customer_files = 3;
  t.rating = 4;
  t.rated_at = 1'764'000'850'000'000;
  t.rating_comment = "很好\nthanks";
  t.comments = 5;
  t.attachments = {"a-1", "a-2"};
  t.sla_marks = {{SlaMark::Kind::kSubmitted, 1, "", {}},
                 {SlaMark::Kind::kFields, 2, "", Object{{"priority", Value("low")}}},
                 {SlaMark::Kind::kNode, 3, "engineer", {}},
                 {SlaMark::Kind::kClosed, 4, "", {}},
                 {SlaMark::Kind::kReopened, 5, "", {}},
                 {SlaMark::Kind::kClosed, 6, "", {}}};
  t.sla_fired = {"sla:resolution:warning"};
  t.sla_final = Value(Object{{"breached", Value(Array{Value("resolution")})}});
  // Lookups and to-dos interleaved, as the log opened them: the order comes back.
  t.open_requests = {
      {OpenRequest::Kind::kLookup, 7, {}, {}, 0},
      {OpenRequest::Kind::kTodo, 9, {AssigneeSpec::Kind::kRole, "cs_supervisor"}, "新工单 T-1", 11},
      {OpenRequest::Kind::kLookup, 12, {}, {}, 0},
      {OpenRequest::Kind::kTodo, 14, {AssigneeSpec::Kind::kUser, "sun"}, "回访", 13}};
  return t;
}

std::vector<uint8_t> encoded(const TicketState& t) {
  flatbuffers::FlatBufferBuilder fbb;
  encode_ticket(t, fbb);
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

void expect_same(const TicketState& a, const TicketState& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.form_id, b.form_id);
  EXPECT_EQ(a.form_version, b.form_version);
  EXPECT_EQ(a.flow_id, b.flow_id);
  EXPECT_EQ(a.flow_version, b.flow_version);
  EXPECT_EQ(a.creator, b.creator);
  EXPECT_EQ(a.portal_code, b.portal_code);
  EXPECT_EQ(a.closed, b.closed);
  EXPECT_EQ(a.flow_ended, b.flow_ended);
  EXPECT_EQ(a.node, b.node);
  ASSERT_EQ(a.assignees.size(), b.assignees.size());
  for (size_t i = 0; i < a.assignees.size(); ++i) {
    EXPECT_EQ(a.assignees[i].kind, b.assignees[i].kind);
    EXPECT_EQ(a.assignees[i].id, b.assignees[i].id);
  }
  EXPECT_EQ(a.node_entered_version, b.node_entered_version);
  EXPECT_EQ(a.node_entered_at, b.node_entered_at);
  EXPECT_EQ(a.timers_fired, b.timers_fired);
  EXPECT_EQ(Value(a.fields), Value(b.fields));
  EXPECT_EQ(Value(a.fields).to_json(), Value(b.fields).to_json());  // member order too
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.first_response_at, b.first_response_at);
  EXPECT_EQ(a.closed_at, b.closed_at);
  ASSERT_EQ(a.timeline.size(), b.timeline.size());
  for (size_t i = 0; i < a.timeline.size(); ++i) {
    EXPECT_EQ(a.timeline[i].node, b.timeline[i].node);
    EXPECT_EQ(a.timeline[i].entered_at, b.timeline[i].entered_at);
    EXPECT_EQ(a.timeline[i].left_at, b.timeline[i].left_at);
  }
  EXPECT_EQ(a.rejected, b.rejected);
  EXPECT_EQ(a.transferred, b.transferred);
  EXPECT_EQ(a.reentered, b.reentered);
  EXPECT_EQ(a.reopens, b.reopens);
  EXPECT_EQ(a.customer_files, b.customer_files);
  EXPECT_EQ(a.rating, b.rating);
  EXPECT_EQ(a.rated_at, b.rated_at);
  EXPECT_EQ(a.rating_comment, b.rating_comment);
  EXPECT_EQ(a.comments, b.comments);
  EXPECT_EQ(a.attachments, b.attachments);
  ASSERT_EQ(a.sla_marks.size(), b.sla_marks.size());
  for (size_t i = 0; i < a.sla_marks.size(); ++i) {
    EXPECT_EQ(a.sla_marks[i].kind, b.sla_marks[i].kind);
    EXPECT_EQ(a.sla_marks[i].at_us, b.sla_marks[i].at_us);
    EXPECT_EQ(a.sla_marks[i].node, b.sla_marks[i].node);
    EXPECT_EQ(Value(a.sla_marks[i].fields).to_json(), Value(b.sla_marks[i].fields).to_json());
  }
  EXPECT_EQ(a.sla_fired, b.sla_fired);
  EXPECT_EQ(a.sla_final.to_json(), b.sla_final.to_json());
  ASSERT_EQ(a.open_requests.size(), b.open_requests.size());
  for (size_t i = 0; i < a.open_requests.size(); ++i) {
    const OpenRequest &x = a.open_requests[i], &y = b.open_requests[i];
    EXPECT_EQ(std::tie(x.kind, x.version, x.to.kind, x.to.id, x.text, x.given_at),
              std::tie(y.kind, y.version, y.to.kind, y.to.id, y.text, y.given_at));
  }
}

TEST(TicketCodec, EveryMemberRoundTrips) {
  TicketState t = every_member_set();
  std::vector<uint8_t> bytes = encoded(t);
  EXPECT_EQ(bytes.size() % 8, 0u);  // ticket buffers are laid end to end, each 8-aligned
  TicketState back;
  ASSERT_TRUE(decode_ticket(bytes.data(), bytes.size(), &back));
  expect_same(t, back);
}

TEST(TicketCodec, DefaultsRoundTrip) {
  TicketState t;
  t.id = "T-000001";
  t.version = 1;
  std::vector<uint8_t> bytes = encoded(t);
  TicketState back = every_member_set();  // decoding replaces, never merges
  ASSERT_TRUE(decode_ticket(bytes.data(), bytes.size(), &back));
  expect_same(t, back);
  EXPECT_FALSE(back.rating.has_value());
  EXPECT_TRUE(back.sla_final.is_null());
}

TEST(TicketCodec, DamagedBytesAreRefused) {
  std::vector<uint8_t> bytes = encoded(every_member_set());
  TicketState out;
  for (size_t cut : {size_t{0}, size_t{3}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_FALSE(decode_ticket(bytes.data(), cut, &out)) << "truncated to " << cut;
  }
  std::vector<uint8_t> wrong_size = bytes;
  wrong_size[0] ^= 0x40;  // the size prefix no longer matches
  EXPECT_FALSE(decode_ticket(wrong_size.data(), wrong_size.size(), &out));
  // Offsets pointing outside the buffer: every byte of the root table's offset field.
  std::vector<uint8_t> bad_root = bytes;
  bad_root[4] = 0xff;
  bad_root[5] = 0xff;
  EXPECT_FALSE(decode_ticket(bad_root.data(), bad_root.size(), &out));
}

}  // namespace
}  // namespace ticketd::projections
