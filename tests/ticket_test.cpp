// The reference scenario and the lifecycle rules, through decide/evolve only.
#include <gtest/gtest.h>

#include <map>

#include "domain/permissions.h"
#include "domain/sla.h"
#include "domain/ticket_notes.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

using testing::json;
using testing::reference_catalog;
using testing::reference_submission;
using testing::TicketDriver;
using Types = std::vector<std::string>;

class ReferenceScenario : public ::testing::Test {
 protected:
  ReferenceScenario() : catalog(reference_catalog()), t(catalog) {}

  void submit() {
    auto r =
        t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow", reference_submission()});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  void ok(const Actor& a, Command c) {
    auto r = t.run(a, std::move(c));
    ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  }
  DomainError fails(const Actor& a, Command c) {
    size_t before = t.events.size();
    auto r = t.run(a, std::move(c));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(t.events.size(), before);
    return r.ok() ? DomainError{} : r.error();
  }
  // "code field" of a refusal (nothing written).
  std::string refused(const Actor& a, Command c) {
    DomainError e = fails(a, std::move(c));
    return e.code + " " + e.field;
  }

  Catalog catalog;
  TicketDriver t;
};

TEST_F(ReferenceScenario, SubmissionEntersAcceptanceAndNotifies) {
  submit();
  EXPECT_EQ(t.types_since(0), (Types{"TicketSubmitted", "NodeEntered", "NotificationRequested",
                                     "NotificationRequested"}));
  EXPECT_EQ(t.state.node, "accept");
  EXPECT_EQ(t.state.version, 4u);
  EXPECT_EQ(t.state.creator, "li");
  EXPECT_EQ(t.state.field("priority"), Value("中"));                        // default
  EXPECT_EQ(t.state.field("status"), Value("待受理"));                      // default
  EXPECT_EQ(t.state.field("created_time"), Value("2026-11-25T08:00:00Z"));  // auto now
  const Value& sms = t.events[3].data;
  EXPECT_EQ(sms.string_or("channel"), "sms");
  EXPECT_EQ(sms.string_or("to"), "+86 138 1234 5678");
  EXPECT_EQ(sms.string_or("recipient"), "phone");
  EXPECT_EQ(sms.string_or("text"), "您的服务单已受理,编号为T-000042");
  EXPECT_EQ(t.events[2].data.string_or("to"), "cs_supervisor");
  EXPECT_EQ(t.events[2].data.string_or("text"), "新工单 T-000042:华东精密机械有限公司 / 功能故障");
}

TEST_F(ReferenceScenario, ARulesToDoIsDoneByItsHolderActingOrMarkingIt) {
  testing::publish(catalog, decide_publish_rule(catalog, "prepare",
                                                json(R"({"name":"准备派工","form":"service_ticket",
      "trigger":{"type":"created"},"actions":[{"type":"notify","to":{"role":"tech_supervisor"},
      "channel":"todo","template":"准备派工 {{ticket.id}}"}]})"),
                                                "admin", 0));
  submit();
  // The reference rule's 新工单 for 客服主管 is the work of the node the ticket waits at for
  // them: it opens no to-do. The new rule's for 技术主管 does.
  ASSERT_EQ(t.state.open_requests.size(), 1u);
  const OpenRequest todo = t.state.open_requests[0];
  EXPECT_EQ(todo.kind, OpenRequest::Kind::kTodo);
  EXPECT_EQ(todo.to.kind, AssigneeSpec::Kind::kRole);
  EXPECT_EQ(todo.to.id, "tech_supervisor");
  EXPECT_EQ(todo.text, "准备派工 T-000042");
  EXPECT_TRUE(in_inbox_of(t.state, t.user("wang")));
  EXPECT_FALSE(holds_todos(t.state, t.user("zhang")));
  // Only its holders (or an administrator) mark it done; an auditor holding the role may not.
  EXPECT_EQ(refused(t.user("zhang"), FinishTodo{todo.version}), "forbidden ");
  EXPECT_EQ(refused(t.user("wang"), FinishTodo{todo.version + 100}), "not_found ");
  Actor auditor = t.user("audit");
  auditor.auditor = true;
  auditor.roles.push_back("tech_supervisor");
  EXPECT_EQ(refused(auditor, FinishTodo{todo.version}), "forbidden ");
  // 张三's accepting it settles nothing of 王五's; 王五 dispatching it settles his.
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("复杂")}}, "", ""});
  EXPECT_EQ(t.state.open_requests.size(), 1u);
  const uint64_t before = t.state.version;
  ok(t.user("wang"), TakeAction{"approve", {{"engineer", Value("zhao")}}, "", ""});
  EXPECT_TRUE(t.state.open_requests.empty());
  const Types made = t.types_since(before);
  EXPECT_EQ(std::count(made.begin(), made.end(), "TodoDone"), 1);
  EXPECT_EQ(refused(t.user("wang"), FinishTodo{todo.version}), "not_found ");
}

TEST_F(ReferenceScenario, AnAdministratorMarksAnyToDoDoneAndOldToDosStayClosed) {
  testing::publish(catalog, decide_publish_rule(catalog, "tell_sun",
                                                json(R"({"name":"告知","form":"service_ticket",
      "trigger":{"type":"created"},"actions":[{"type":"notify","to":{"user":"sun"},
      "channel":"todo","template":"请关注"}]})"),
                                                "admin", 0));
  submit();
  ASSERT_EQ(t.state.open_requests.size(), 1u);
  EXPECT_TRUE(in_inbox_of(t.state, t.user("sun")));
  ok(t.admin(), FinishTodo{t.state.open_requests[0].version});
  EXPECT_TRUE(t.state.open_requests.empty());
  EXPECT_FALSE(in_inbox_of(t.state, t.user("sun")));
  // A todo notification recorded before to-dos were kept open (no "todo" mark) opens none.
  DomainEvent old{event_types::kNotificationRequested,
                  json(R"({"rule":"r","channel":"todo","to":"sun","recipient":"user","text":"x"})"),
                  "system", 1, std::nullopt};
  EXPECT_TRUE(evolve(t.state, old).open_requests.empty());
}

TEST_F(ReferenceScenario, SimpleBranchToClosed) {
  submit();
  // The supervisor must choose how to handle it before approving.
  EXPECT_EQ(fails(t.user("zhang"), TakeAction{"approve", {}, "", ""}).code, codes::kRequired);
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "客服可处理", ""});
  EXPECT_EQ(t.state.node, "cs_handle");
  EXPECT_EQ(t.state.field("status"), Value("处理中"));
  EXPECT_GT(t.state.first_response_at, 0);
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value("已远程指导清理进纸辊。")}}, "", ""});
  EXPECT_EQ(t.state.node, "confirm");
  EXPECT_EQ(t.state.field("status"), Value("待客户确认"));
  EXPECT_EQ(fails(t.customer(), RateTicket{5, "很满意"}).code, codes::kActionNotAllowed);  // open
  const size_t before_confirm = t.events.size();
  ok(t.customer(), TakeAction{"confirm", {}, "好了,谢谢", ""});
  EXPECT_TRUE(t.state.closed);
  EXPECT_TRUE(t.state.flow_ended);
  EXPECT_EQ(t.state.node, "end");
  EXPECT_EQ(t.state.field("status"), Value("已关闭"));
  EXPECT_TRUE(t.state.first_contact_resolution());
  // The flow's end closes the ticket; the reference rule on flow_ended sets its status and would
  // close it too: the history says it was closed once.
  EXPECT_EQ(t.types_since(before_confirm), (Types{"CustomerConfirmed", "NodeEntered", "FlowEnded",
                                                  "TicketClosed", "FieldsChanged"}));
  ok(t.customer(), RateTicket{5, "很满意"});
  EXPECT_EQ(t.state.rating, 5);
  EXPECT_EQ(fails(t.user("li"), AddComment{""}).code, codes::kRequired);
  EXPECT_EQ(fails(t.user("zhang"), TakeAction{"approve", {}, "", ""}).code, codes::kTicketClosed);
  // Closed: a customer's reply or file would reach nobody; staff may still note or attach.
  EXPECT_EQ(fails(t.customer(), AddComment{"又坏了"}).code, codes::kTicketClosed);
  EXPECT_EQ(fails(t.customer(), AddAttachment{"att-1", "卡纸.png", "image/png", 70}).code,
            codes::kTicketClosed);
  ok(t.user("li"), AddComment{"客户来电,已建新单"});
  ok(t.user("li"), AddAttachment{"att-2", "来电录音.mp3", "audio/mpeg", 1024});
}

// One portal code stores at most kMaxCustomerFiles files on a ticket, counted by the ticket's own
// events, so that racing uploads cannot pass it; staff files do not count.
TEST_F(ReferenceScenario, TheCustomerSendsATicketAtMostTwentyFiles) {
  submit();
  ok(t.user("li"), AddAttachment{"att-staff", "来电录音.mp3", "audio/mpeg", 1024});
  for (int i = 0; i < kMaxCustomerFiles; ++i) {
    EXPECT_FALSE(customer_file_refused(t.state));
    ok(t.customer(), AddAttachment{"att-" + std::to_string(i), "照片.png", "image/png", 70});
  }
  EXPECT_EQ(t.state.customer_files, kMaxCustomerFiles);
  EXPECT_EQ(refused(t.customer(), AddAttachment{"att-21", "照片.png", "image/png", 70}),
            "out_of_range body");
  ok(t.user("li"), AddAttachment{"att-staff-2", "报价单.pdf", "application/pdf", 10, true});
}

// The fix did not hold: the customer (or the agent they call) takes the closed ticket back into
// its flow, where it is worked and closed again, and counts as not resolved at first contact.
TEST_F(ReferenceScenario, AClosedTicketIsReopenedAndClosesAgain) {
  submit();
  EXPECT_EQ(refused(t.user("li"), ReopenTicket{"还是卡纸", ""}), "action_not_allowed ");  // open
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value("已远程指导清理进纸辊。")}}, "", ""});
  ok(t.customer(), TakeAction{"confirm", {}, "", ""});
  ok(t.customer(), RateTicket{5, "很满意"});
  ASSERT_TRUE(t.state.closed);
  const int64_t closed_at = t.state.closed_at;

  // Refused, writing nothing: no reason; a node that is no place to work on it (the end, the
  // customer's own, none); the customer naming a node; staff who neither submitted it nor act
  // where it would go; an auditor.
  EXPECT_EQ(refused(t.customer(), ReopenTicket{"  ", ""}), "required reason");
  EXPECT_EQ(refused(t.user("li"), ReopenTicket{"还是卡纸", "end"}), "invalid_value node");
  EXPECT_EQ(refused(t.user("li"), ReopenTicket{"还是卡纸", "confirm"}), "invalid_value node");
  EXPECT_EQ(refused(t.user("li"), ReopenTicket{"还是卡纸", "nowhere"}), "invalid_value node");
  EXPECT_EQ(refused(t.customer(), ReopenTicket{"还是卡纸", "dispatch"}), "forbidden node");
  EXPECT_EQ(refused(t.user("wang"), ReopenTicket{"还是卡纸", ""}),
            "forbidden ");  // accept's not his
  Actor auditor = t.user("audit");
  auditor.auditor = true;
  EXPECT_EQ(refused(auditor, ReopenTicket{"还是卡纸", ""}), "forbidden ");
  // The company's week has passed for the customer (not for staff).
  t.now_us = closed_at + 7 * 86400LL * 1000000 + 1;
  EXPECT_EQ(refused(t.customer(), ReopenTicket{"还是卡纸", ""}), "ticket_closed ");
  EXPECT_NE(fails(t.customer(), AddComment{"又坏了"}).message.find("please contact us again"),
            std::string::npos);
  t.now_us = closed_at + 7 * 86400LL * 1000000;
  EXPECT_NE(fails(t.customer(), AddComment{"又坏了"}).message.find("reopen it"), std::string::npos);

  const size_t before = t.events.size();
  ok(t.customer(), ReopenTicket{"还是卡纸,第二天又坏了", ""});
  EXPECT_EQ(t.types_since(before),
            (Types{"TicketReopened", "NodeEntered", "NotificationRequested", "FieldsChanged"}));
  EXPECT_EQ(t.events[before].data.string_or("by"), "customer");
  EXPECT_EQ(t.events[before].data.string_or("node"), "accept");
  EXPECT_EQ(t.events[before + 1].data.string_or("from"), "end");
  EXPECT_EQ(t.events[before + 2].data.string_or("text"),
            "工单 T-000042(华东精密机械有限公司)已重新打开:还是卡纸,第二天又坏了");
  EXPECT_FALSE(t.state.closed);
  EXPECT_FALSE(t.state.flow_ended);
  EXPECT_EQ(t.state.closed_at, 0);
  EXPECT_EQ(t.state.node, "accept");
  EXPECT_EQ(t.state.field("status"), Value("待受理"));
  EXPECT_EQ(t.state.reopens, 1u);
  EXPECT_FALSE(t.state.rating.has_value());  // the next close's outcome is rated afresh
  ASSERT_EQ(t.state.assignees.size(), 1u);
  EXPECT_EQ(t.state.assignees[0].id, "cs_supervisor");
  EXPECT_EQ(note_of(t.events[before])->kind, TicketNote::Kind::kCustomer);
  EXPECT_EQ(refused(t.customer(), ReopenTicket{"再开一次", ""}), "action_not_allowed ");

  // Worked and closed again: rated again, not a first-contact resolution.
  ok(t.user("zhang"), TakeAction{"approve", {}, "", ""});  // still 简单
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value("更换进纸辊。")}}, "", ""});
  ok(t.customer(), TakeAction{"confirm", {}, "", ""});
  EXPECT_TRUE(t.state.closed);
  EXPECT_EQ(t.state.field("status"), Value("已关闭"));
  EXPECT_FALSE(t.state.first_contact_resolution());
  ok(t.customer(), RateTicket{4, ""});

  // Staff may send it where the work is: the technical supervisor to his own node, the
  // submitter anywhere staff work.
  ok(t.user("wang"), ReopenTicket{"回访发现需工程师上门", "dispatch"});
  EXPECT_EQ(t.state.node, "dispatch");
  EXPECT_EQ(t.state.field("status"), Value("处理中"));
  EXPECT_EQ(t.state.reopens, 2u);
}

// Control characters print as nothing and cut a PDF's line at a NUL: words written on a ticket
// take line breaks and tabs only, a single-line field not even those.
TEST_F(ReferenceScenario, WordsWrittenOnATicketTakeNoControlCharacters) {
  Object fields = reference_submission();
  set_member(fields, "customer_name", Value("华东精密\n机械"));
  EXPECT_EQ(refused(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields}),
            "invalid_value customer_name");
  submit();
  EXPECT_EQ(fails(t.user("li"), AddComment{"清屏\x1b[2J"}).message,
            "text has the control character U+001B at character 3 (only line breaks and tabs are "
            "taken)");
  EXPECT_EQ(
      refused(t.user("zhang"),
              TakeAction{"approve", {{"complexity", Value("简单")}}, std::string("a\0b", 3), ""}),
      "invalid_value comment");
  ok(t.user("li"), AddComment{"第一行\r\n\t第二行"});
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value("已处理。")}}, "", ""});
  ok(t.customer(), TakeAction{"confirm", {}, "", ""});
  EXPECT_EQ(refused(t.customer(), RateTicket{5, "很满意\a"}), "invalid_value comment");
  EXPECT_EQ(refused(t.customer(), RateTicket{5, std::string(10001, 'x')}), "out_of_range comment");
  ok(t.customer(), RateTicket{5, "很满意"});
}

// Spaces alone fill nothing: not a required field at submission or before leaving a node, nor
// a comment. The ideographic space is what a Chinese input method types.
TEST_F(ReferenceScenario, SpacesAloneFillNoRequiredField) {
  Object fields = reference_submission();
  set_member(fields, "customer_name", Value(" \xE3\x80\x80 "));
  EXPECT_EQ(refused(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields}),
            "required customer_name");
  submit();
  EXPECT_EQ(refused(t.user("li"), AddComment{"\xE3\x80\x80\xC2\xA0"}), "required text");
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  EXPECT_EQ(refused(t.user("li"), TakeAction{"submit", {{"solution", Value("\n\n")}}, "", ""}),
            "required solution");
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value(" 已处理 ")}}, "", ""});
}

TEST_F(ReferenceScenario, AFullWidthPhoneNumberIsStoredInAscii) {
  Object fields = reference_submission();
  set_member(fields, "customer_phone", Value("＋８６　１３８－１２３４－５６７８"));
  ok(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields});
  EXPECT_EQ(t.state.field("customer_phone"), Value("+86 138-1234-5678"));
}

TEST_F(ReferenceScenario, AnImageFieldTakesPicturesOnly) {
  Object fields = reference_submission();
  set_member(fields, "images", Value(Array{Value("att-1"), Value("att-doc1")}));
  EXPECT_EQ(refused(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields}),
            "invalid_value images");
  set_member(fields, "images", Value(Array{Value("att-1")}));
  set_member(fields, "attachments", Value(Array{Value("att-doc1")}));
  ok(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields});
}

// A submission that names no flow starts the one flow that takes its form; with none or two there
// is nothing to choose, and the refusal names them.
TEST_F(ReferenceScenario, ASubmissionWithoutAFlowStartsTheFormsOnlyFlow) {
  ok(t.user("li"), SubmitTicket{"service_ticket", "", reference_submission()});
  EXPECT_EQ(t.state.flow_id, "service_flow");
  EXPECT_EQ(t.events[0].data.string_or("flow"), "service_flow");
  EXPECT_EQ(t.state.node, "accept");

  testing::publish(catalog,
                   decide_publish_form(catalog, "visit", json(R"({"name":"上门登记","fields":[
                                                  {"key":"address","type":"text"}]})"),
                                       "admin", 0));
  TicketDriver other(catalog);
  auto none = other.run(t.user("li"), SubmitTicket{"visit", "", {{"address", Value("x")}}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code + " " + none.error().field, "required flow");
  EXPECT_EQ(none.error().message, "flow is required: no flow takes form visit");

  Value second = testing::read_json_file("service_flow.flow.json");
  testing::publish(catalog, decide_publish_flow(catalog, "express_flow", second, "admin", 0));
  TicketDriver two(catalog);
  auto both = two.run(t.user("li"), SubmitTicket{"service_ticket", "", reference_submission()});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message,
            "flow is required: form service_ticket is taken by flows express_flow, service_flow");
  EXPECT_TRUE(
      two.run(t.user("li"), SubmitTicket{"service_ticket", "express_flow", reference_submission()})
          .ok());
  EXPECT_EQ(two.state.flow_id, "express_flow");
  auto elsewhere =
      TicketDriver(catalog).run(t.user("li"), SubmitTicket{"visit", "service_flow", Object{}});
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_EQ(elsewhere.error().message, "flow service_flow is for form service_ticket");
}

// The view's "you" (work_at_node) says what decide() lets each caller do, at every node of the
// complex path and once closed: an action or field it lists passes the permission checks, one it
// leaves out is refused by them.
TEST_F(ReferenceScenario, WorkAtNodeAgreesWithDecide) {
  Actor auditor = t.user("audit");
  auditor.auditor = true;
  const std::vector<Actor> callers = {t.user("li"),   t.user("zhang"), t.user("wang"),
                                      t.user("zhao"), t.user("qian"),  t.admin(),
                                      t.customer(),   auditor};
  const FlowDef& flow = *catalog.flow("service_flow");
  const FormDef& form = *catalog.form("service_ticket");
  auto refused_by_permissions = [](const std::string& code) {
    return code == codes::kForbidden || code == codes::kActionNotAllowed ||
           code == codes::kTicketClosed;
  };
  std::map<std::string, std::vector<std::string>> offered;  // node -> admin's actions
  auto check = [&] {
    for (const Actor& a : callers) {
      NodeWork work = work_at_node(t.state, flow, a);
      for (std::string_view action : kActionNames) {
        TicketDriver probe = t;
        TakeAction cmd{std::string(action), {}, "", action == "transfer" ? "qian" : ""};
        auto r = probe.run(a, cmd);
        bool listed =
            std::find(work.actions.begin(), work.actions.end(), action) != work.actions.end();
        std::string code = r.ok() ? "" : r.error().code;
        EXPECT_EQ(listed, !refused_by_permissions(code))
            << a.id << " " << action << " at " << t.state.node << ": " << code;
      }
      for (const FieldDef& f : form.fields) {
        TicketDriver probe = t;
        auto r = probe.run(a, ChangeFields{{{f.key, Value()}}, std::nullopt});
        bool listed =
            std::find(work.writable.begin(), work.writable.end(), f.key) != work.writable.end();
        std::string code = r.ok() ? "" : r.error().code;
        EXPECT_EQ(listed, !refused_by_permissions(code))
            << a.id << " writes " << f.key << " at " << t.state.node << ": " << code;
      }
      if (a.admin) offered[t.state.node] = work.actions;
      if (a.portal_customer) continue;  // the portal's reopen has its window, not this test
      TicketDriver probe = t;
      auto r = probe.run(a, ReopenTicket{"还是卡纸", ""});
      EXPECT_EQ(staff_may_reopen(t.state, flow, a), r.ok())
          << a.id << " reopens at " << t.state.node << ": " << (r.ok() ? "" : r.error().code);
    }
  };
  submit();
  check();
  EXPECT_EQ(work_at_node(t.state, flow, t.user("zhang")).required, (Types{"complexity"}));
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("复杂")}}, "", ""});
  check();
  ok(t.user("wang"), TakeAction{"approve", {{"engineer", Value("zhao")}}, "", ""});
  check();
  ok(t.user("zhao"), TakeAction{"submit", {{"solution", Value("更换进纸辊")}}, "", ""});
  check();
  EXPECT_EQ(work_at_node(t.state, flow, t.customer()).actions,
            (Types{"approve", "confirm", "reject"}));
  EXPECT_TRUE(work_at_node(t.state, flow, t.user("li")).actions.empty());
  ok(t.customer(), TakeAction{"confirm", {}, "", ""});
  ASSERT_TRUE(t.state.closed);
  check();
  // Back to 工单受理: its supervisor, the agent who submitted it, and administrators reopen it.
  std::vector<std::string> reopeners;
  for (const Actor& a : callers) {
    if (staff_may_reopen(t.state, flow, a)) reopeners.push_back(a.id);
  }
  EXPECT_EQ(reopeners, (Types{"li", "zhang", "admin"}));
  EXPECT_EQ(offered["accept"], (Types{"approve", "reject", "transfer"}));
  EXPECT_TRUE(offered[t.state.node].empty());
}

TEST_F(ReferenceScenario, ComplexBranchWithRejectAndTransfer) {
  submit();
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("复杂")}}, "", ""});
  EXPECT_EQ(t.state.node, "dispatch");
  // The technical supervisor sends it back for re-triage: reject_to = accept.
  ok(t.user("wang"), TakeAction{"reject", {}, "信息不全", ""});
  EXPECT_EQ(t.state.node, "accept");
  EXPECT_TRUE(t.state.rejected);
  EXPECT_TRUE(t.state.reentered);
  ok(t.user("zhang"), TakeAction{"approve", {}, "", ""});  // complexity is still 复杂
  ASSERT_EQ(t.state.node, "dispatch");
  EXPECT_EQ(fails(t.user("wang"), TakeAction{"approve", {}, "", ""}).field, "engineer");
  // 工程师 takes an engineer: the auditor, who changes nothing, would leave the ticket stuck.
  EXPECT_EQ(
      fails(t.user("wang"), TakeAction{"approve", {{"engineer", Value("audit")}}, "", ""}).message,
      "工程师 (engineer): no active user \"audit\" with role engineer");
  ok(t.user("wang"), TakeAction{"approve", {{"engineer", Value("zhao")}}, "", ""});
  ASSERT_EQ(t.state.node, "engineer_fix");
  ASSERT_EQ(t.state.assignees.size(), 1u);
  EXPECT_EQ(t.state.assignees[0].id, "zhao");
  // Another engineer may not act; zhao transfers to qian, after which zhao may not act either.
  EXPECT_EQ(fails(t.user("qian"), TakeAction{"submit", {{"solution", Value("x")}}, "", ""}).code,
            codes::kForbidden);
  EXPECT_EQ(fails(t.user("zhao"), TakeAction{"transfer", {}, "", "nobody"}).field, "to");
  // Nor to the auditor, who would hold the to-do and could not act on it.
  const auto to_auditor = fails(t.user("zhao"), TakeAction{"transfer", {}, "", "audit"});
  EXPECT_EQ(to_auditor.field, "to");
  EXPECT_NE(to_auditor.message.find("is an auditor"), std::string::npos) << to_auditor.message;
  // "to" is a transfer's: with submit it would be dropped unsaid (the flow says who is next).
  EXPECT_EQ(fails(t.user("zhao"), TakeAction{"submit", {}, "", "qian"}).field, "to");
  ok(t.user("zhao"), TakeAction{"transfer", {}, "出差,转钱七", "qian"});
  EXPECT_TRUE(t.state.transferred);
  EXPECT_EQ(fails(t.user("zhao"), TakeAction{"submit", {{"solution", Value("x")}}, "", ""}).code,
            codes::kForbidden);
  ok(t.user("qian"), TakeAction{"submit", {{"solution", Value("更换搓纸轮后测试正常。")}}, "", ""});
  EXPECT_EQ(t.state.node, "confirm");
  // Customer rejects: back to acceptance; then through again.
  ok(t.customer(), TakeAction{"reject", {}, "还是卡纸", ""});
  EXPECT_EQ(t.state.node, "accept");
  ok(t.user("zhang"), TakeAction{"approve", {}, "", ""});
  ok(t.user("wang"), TakeAction{"approve", {}, "", ""});
  ok(t.user("zhao"), TakeAction{"submit", {{"solution", Value("更换定影组件。")}}, "", ""});
  ok(t.admin(), TakeAction{"approve", {}, "代客户确认", ""});  // an admin may act anywhere
  EXPECT_TRUE(t.state.closed);
  EXPECT_FALSE(t.state.first_contact_resolution());
  ASSERT_GE(t.state.timeline.size(), 8u);
  EXPECT_EQ(t.state.timeline.front().node, "accept");
  EXPECT_GT(t.state.timeline.front().left_at, 0);
}

TEST_F(ReferenceScenario, PermissionDenials) {
  // Submitting a field the start node does not let submitters write.
  auto fields = reference_submission();
  fields.emplace_back("solution", Value("自己写的"));
  EXPECT_EQ(fails(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields}).code,
            codes::kForbidden);
  submit();
  // Not the assignee.
  EXPECT_EQ(
      fails(t.user("li"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""}).code,
      codes::kForbidden);
  // The customer, whom the ticket is not waiting on yet, is told so in words (the portal's).
  const DomainError early = fails(t.customer(), TakeAction{"confirm", {}, "", ""});
  EXPECT_EQ(early.code + " " + early.field, "action_not_allowed ");
  EXPECT_EQ(early.message, "the ticket is not waiting for your confirmation: it is at 工单受理");
  // An action the node does not offer.
  EXPECT_EQ(fails(t.user("zhang"), TakeAction{"submit", {}, "", ""}).code,
            codes::kActionNotAllowed);
  EXPECT_EQ(fails(t.user("zhang"), TakeAction{"confirm", {}, "", ""}).code,
            codes::kActionNotAllowed);
  EXPECT_EQ(fails(t.user("zhang"), TakeAction{"dance", {}, "", ""}).code, codes::kInvalidValue);
  // A field not writable at this node, and an unknown one.
  EXPECT_EQ(fails(t.user("zhang"), ChangeFields{{{"solution", Value("x")}}, std::nullopt}).code,
            codes::kForbidden);
  EXPECT_EQ(fails(t.user("zhang"), ChangeFields{{{"colour", Value("x")}}, std::nullopt}).code,
            codes::kUnknownField);
  // Auditors change nothing; only admins close; only the customer rates.
  Actor auditor = t.user("audit");
  auditor.auditor = true;
  EXPECT_EQ(fails(auditor, AddComment{"看看"}).code, codes::kForbidden);
  EXPECT_EQ(
      fails(auditor, SubmitTicket{"service_ticket", "service_flow", reference_submission()}).code,
      codes::kForbidden);
  EXPECT_EQ(fails(t.user("zhang"), CloseTicket{""}).code, codes::kForbidden);
  EXPECT_EQ(fails(t.user("zhang"), RateTicket{5, ""}).code, codes::kForbidden);
  EXPECT_EQ(fails(t.user("li"), RateTicket{5, ""}).code, codes::kForbidden);  // its submitter
  EXPECT_EQ(fails(t.admin(), RateTicket{6, ""}).code, codes::kOutOfRange);
}

TEST_F(ReferenceScenario, StaleVersionConflicts) {
  submit();
  uint64_t v = t.state.version;
  ok(t.user("zhang"), ChangeFields{{{"priority", Value("高")}}, v});
  EXPECT_EQ(fails(t.user("zhang"), ChangeFields{{{"priority", Value("低")}}, v}).code,
            codes::kConflict);
  // Writing what is there already writes nothing.
  size_t before = t.events.size();
  ok(t.user("zhang"), ChangeFields{{{"priority", Value("高")}}, std::nullopt});
  EXPECT_EQ(t.events.size(), before);
}

TEST_F(ReferenceScenario, IdleRuleFiresOnceAfterThirtyMinutes) {
  submit();
  auto timers = ticket_deadlines(t.state, catalog).timers;
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].timer, "accept_overdue");
  EXPECT_EQ(timers[0].due_at, t.state.node_entered_at + 30LL * 60 * 1000000);
  t.now_us = timers[0].due_at;
  size_t before = t.events.size();
  ok(Actor{kSystemActor, {}, false, false, false},
     FireTimer{"accept_overdue", timers[0].entered_version});
  EXPECT_EQ(t.types_since(before), (Types{"TimerFired", "FieldsChanged", "NotificationRequested"}));
  EXPECT_EQ(t.events[before].id,
            timer_event_id("T-000042", "accept_overdue", timers[0].entered_version));
  EXPECT_EQ(t.state.field("priority"), Value("高"));
  EXPECT_EQ(t.events.back().data.string_or("channel"), "email");
  EXPECT_EQ(t.events.back().data.string_or("to"), "dept_manager");
  // The rule names Asia/Shanghai: the manager reads when the ticket came in on Beijing's clock.
  EXPECT_EQ(t.events.back().data.string_or("text"),
            "工单T-000042(华东精密机械有限公司,2026-11-25 16:00 提交)待受理已超过30分钟,"
            "优先级已升为高");
  // No idle timer is left; the raised priority brings the ticket under the 高 SLA policy instead.
  auto left = ticket_deadlines(t.state, catalog).timers;
  EXPECT_FALSE(left.empty());
  for (const auto& p : left) EXPECT_TRUE(p.timer.starts_with("sla:")) << p.timer;
  // Firing again does nothing.
  before = t.events.size();
  ok(Actor{kSystemActor, {}, false, false, false},
     FireTimer{"accept_overdue", timers[0].entered_version});
  EXPECT_EQ(t.events.size(), before);
}

TEST_F(ReferenceScenario, LeavingTheNodeCancelsTheIdleTimer) {
  submit();
  auto timers = ticket_deadlines(t.state, catalog).timers;
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  EXPECT_TRUE(ticket_deadlines(t.state, catalog).timers.empty());
  size_t before = t.events.size();
  ok(Actor{kSystemActor, {}, false, false, false},
     FireTimer{"accept_overdue", timers[0].entered_version});
  EXPECT_EQ(t.events.size(), before);
}

TEST_F(ReferenceScenario, NewFormVersionDoesNotChangeRunningTickets) {
  submit();
  Value doc = testing::read_json_file("service_ticket.form.json");
  Object form = doc.as_object();
  Array fields = form[1].second.as_array();
  fields.push_back(Value(Object{{"key", Value("serial_no")},
                                {"label", Value("设备序列号")},
                                {"type", Value("text")},
                                {"required", Value(true)}}));
  form[1].second = Value(fields);
  testing::publish(catalog,
                   decide_publish_form(catalog, "service_ticket", Value(form), "admin", 0));
  EXPECT_EQ(catalog.form("service_ticket")->version, 2u);
  EXPECT_EQ(t.state.form_version, 1u);
  // The running ticket keeps v1: no serial number needed to go on.
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  // A new ticket is on v2 and needs it.
  TicketDriver fresh(catalog);
  auto r = fresh.run(fresh.user("li"),
                     SubmitTicket{"service_ticket", "service_flow", reference_submission()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "serial_no");
  // Publishing the same document again changes nothing.
  auto same = decide_publish_form(catalog, "service_ticket", Value(form), "admin", 0);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same.value().has_value());
}

TEST_F(ReferenceScenario, ReadFilterFollowsTheNode) {
  submit();
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value("已处理")}}, "", ""});
  const FlowDef& flow = *catalog.flow("service_flow");
  Object customer_view = readable_fields(t.state, flow, t.customer());
  std::vector<std::string> keys;
  for (const auto& [k, v] : customer_view) keys.push_back(k);
  // In the order the ticket acquired them: status by default at submission, solution later.
  EXPECT_EQ(keys, (std::vector<std::string>{"customer_name", "problem_type", "description",
                                            "status", "solution"}));
  EXPECT_EQ(readable_fields(t.state, flow, t.admin()).size(), t.state.fields.size());
}

TEST_F(ReferenceScenario, FieldsWalkedInPlaceAreTheReadableOnes) {
  submit();
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  const FlowDef& flow = *catalog.flow("service_flow");
  for (const Actor& actor : {t.customer(), t.admin(), t.user("li"), t.user("zhao")}) {
    Object walked;
    for_each_readable_field(t.state, flow, actor, [&](const std::string& k, const Value& v) {
      walked.emplace_back(k, v);
    });
    EXPECT_EQ(walked, readable_fields(t.state, flow, actor)) << actor.id;
    if (actor.portal_customer) {
      EXPECT_LT(walked.size(), t.state.fields.size());  // the filter has something to leave out
    }
  }
}

TEST(Rules, RuleChainsStopAndRulesDoNotRetriggerThemselves) {
  Catalog c = reference_catalog();
  // A rule that reacts to its own field: it must not loop.
  Value loop;
  std::string err;
  ASSERT_TRUE(parse_json(R"({"name":"自激","form":"service_ticket",
    "trigger":{"type":"field_changed","field":"priority"},
    "actions":[{"type":"set_field","field":"priority","value":"低"}]})",
                         &loop, &err));
  testing::publish(c, decide_publish_rule(c, "self_loop", loop, "admin", 0));
  TicketDriver t(c);
  ASSERT_TRUE(
      t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow", reference_submission()})
          .ok());
  auto r = t.run(t.user("zhang"), ChangeFields{{{"priority", Value("高")}}, std::nullopt});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().size(), 2u);  // the change, and the rule's one reaction
  EXPECT_EQ(t.state.field("priority"), Value("低"));
}

// A notify text shows a date-time field on the clock of the rule's zone, for the people who read
// it; without a zone, and in what a lookup sends, as stored (RFC 3339 UTC). Other fields are
// never read as times, even when their text looks like one. Once the company names its zone, a
// rule without one writes on the company's clock; a rule's own zone comes first.
TEST(Rules, NotifyTextsShowDateTimesInTheRulesZone) {
  Catalog c = reference_catalog();
  auto rule = [&](const std::string& id, const std::string& zone) {
    std::string doc = R"({"name":")" + id + R"(","form":"service_ticket",)" + zone +
                      R"("trigger":{"type":"created"},"actions":[
        {"type":"notify","to":{"role":"cs_supervisor"},"channel":"todo",
         "template":"{{fields.created_time}} / {{fields.customer_name}}"},
        {"type":"lookup","source":"crm","path":"/at/{{fields.created_time}}",
         "query":{"at":"{{fields.created_time}}"},"fill":{"solution":"/s"}}]})";
    testing::publish(c, decide_publish_rule(c, id, json(doc), "admin", 0));
  };
  rule("shanghai", R"("time_zone":"Asia/Shanghai",)");
  rule("kathmandu", R"("time_zone":"Asia/Kathmandu",)");
  rule("utc", R"("time_zone":"UTC",)");
  rule("none", "");
  auto submit = [&] {
    TicketDriver t(c);
    t.now_us = *parse_rfc3339("2026-11-30T21:20:59.5Z");
    Object fields = reference_submission();
    fields[0].second = Value("2026-11-30T21:20:00Z");  // customer_name, a text like a time
    EXPECT_TRUE(t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields}).ok());
    std::map<std::string, std::string> texts;
    for (const DomainEvent& e : t.events) {
      if (e.type == "NotificationRequested" && e.data.string_or("channel") == "todo")
        texts[e.data.string_or("rule")] = e.data.string_or("text");
      if (e.type == "LookupRequested") {
        EXPECT_EQ(e.data.string_or("path"), "/at/2026-11-30T21%3A20%3A59.500000Z");
        EXPECT_EQ(e.data["query"].string_or("at"), "2026-11-30T21:20:59.500000Z");
      }
    }
    return texts;
  };
  auto texts = submit();
  EXPECT_EQ(texts["shanghai"], "2026-12-01 05:20 / 2026-11-30T21:20:00Z");
  EXPECT_EQ(texts["kathmandu"], "2026-12-01 03:05 / 2026-11-30T21:20:00Z");
  EXPECT_EQ(texts["utc"], "2026-11-30 21:20 / 2026-11-30T21:20:00Z");
  EXPECT_EQ(texts["none"], "2026-11-30T21:20:59.500000Z / 2026-11-30T21:20:00Z");
  testing::publish(c, decide_change_settings(c, json(R"({"time_zone":"Asia/Shanghai"})"), "a", 0));
  texts = submit();
  EXPECT_EQ(texts["none"], "2026-12-01 05:20 / 2026-11-30T21:20:00Z");
  EXPECT_EQ(texts["kathmandu"], "2026-12-01 03:05 / 2026-11-30T21:20:00Z");
}

// {{company.name}}: the name the company settings give (an SMS's 【signature】), empty until then.
TEST(Rules, TemplatesSayTheCompanysName) {
  Catalog c = reference_catalog();
  testing::publish(c, decide_publish_rule(c, "signed", json(R"({"name":"签名",
    "form":"service_ticket","trigger":{"type":"created"},"actions":[
      {"type":"notify","to":{"role":"cs_supervisor"},"channel":"todo",
       "template":"【{{ company.name }}】{{ticket.id}}"}]})"),
                                          "admin", 0));
  auto text = [&] {
    TicketDriver t(c);
    EXPECT_TRUE(
        t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow", reference_submission()})
            .ok());
    for (const DomainEvent& e : t.events) {
      if (e.type == "NotificationRequested" && e.data.string_or("rule") == "signed")
        return e.data.string_or("text");
    }
    return std::string("(none)");
  };
  EXPECT_EQ(text(), "【】T-000042");
  testing::publish(c, decide_change_settings(
                          c, json(R"({"time_zone":"UTC","name":"华东精密售后"})"), "admin", 0));
  EXPECT_EQ(text(), "【华东精密售后】T-000042");
}

// {{ticket.created_at}} and {{sla.due_at}}: when the ticket came in, and the deadline its view
// shows (the nearest of its SLA targets and idle-rule deadlines; empty while none counts), in the
// rule's zone or as RFC 3339 UTC.
TEST_F(ReferenceScenario, TemplatesSayWhenTheTicketCameInAndWhenItIsDue) {
  for (const auto& [id, zone] :
       {std::pair{"due_beijing", R"("time_zone":"Asia/Shanghai",)"}, std::pair{"due_utc", ""}}) {
    testing::publish(
        catalog,
        decide_publish_rule(catalog, id,
                            json(std::string(R"({"name":"期限","form":"service_ticket",)") + zone +
                                 R"("trigger":{"type":"field_changed","field":"status"},"actions":[
          {"type":"notify","to":{"role":"cs_supervisor"},"channel":"todo",
           "template":"{{ticket.created_at}} 提交,{{ sla.due_at }} 前办结"}]})"),
                            "admin", 0));
  }
  auto texts = [](const TicketDriver& d) {
    std::map<std::string, std::string> out;
    for (const DomainEvent& e : d.events) {
      if (e.type == "NotificationRequested" && e.data.string_or("rule").starts_with("due_"))
        out[e.data.string_or("rule")] = e.data.string_or("text");
    }
    return out;
  };
  // 2026-11-25 08:00 UTC, a Wednesday: 16:00 in Beijing. Raised to 高, then answered: the
  // approval sets the status (处理中), and the 高 policy's resolution target (a working day, in
  // cn-workdays: 2 h on Wednesday, 7 h on Thursday) is what is due.
  submit();
  t.now_us += 10 * 60'000'000LL;
  ok(t.user("zhang"), ChangeFields{{{"priority", Value("高")}}, std::nullopt});
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  EXPECT_EQ(texts(t), (std::map<std::string, std::string>{
                          {"due_beijing", "2026-11-25 16:00 提交,2026-11-26 16:00 前办结"},
                          {"due_utc", "2026-11-25T08:00:00Z 提交,2026-11-26T08:00:00Z 前办结"}}));
  EXPECT_EQ(ticket_sla(t.state, catalog, t.now_us).due_at, *parse_rfc3339("2026-11-26T08:00:00Z"));
  // Under no policy and out of the accept node, nothing is due.
  TicketDriver other(catalog);
  ASSERT_TRUE(other
                  .run(other.user("li"),
                       SubmitTicket{"service_ticket", "service_flow", reference_submission()})
                  .ok());
  ASSERT_TRUE(
      other.run(other.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""})
          .ok());
  EXPECT_EQ(texts(other),
            (std::map<std::string, std::string>{{"due_beijing", "2026-11-25 16:00 提交, 前办结"},
                                                {"due_utc", "2026-11-25T08:00:00Z 提交, 前办结"}}));
}

// "auto":"creator" fills a person field with the submitter, and one that names a role only when
// the submitter holds it; otherwise the field is what was written, its default, or required.
TEST(AutoCreator, FillsAPersonFieldOnlyWithOneOfItsRole) {
  Catalog catalog = reference_catalog();
  testing::publish(catalog, decide_publish_form(catalog, "repair", json(R"({"name":"报修","fields":[
      {"key":"taker","label":"受理人","type":"person","auto":"creator","role":"cs_agent"},
      {"key":"note","label":"说明","type":"text"}]})"),
                                                "admin", 0));
  testing::publish(
      catalog, decide_publish_flow(catalog, "repair_flow", json(R"({"name":"报修","form":"repair",
      "nodes":[{"id":"start","name":"开始","type":"start"},{"id":"end","name":"结束","type":"end"}],
      "edges":[{"from":"start","to":"end"}]})"),
                                   "admin", 0));
  auto taker = [&](const Actor& who, Object fields) {
    TicketDriver t(catalog);
    auto r = t.run(who, SubmitTicket{"repair", "repair_flow", std::move(fields)});
    if (!r.ok()) return r.error().code + " " + r.error().field;
    const Value& v = t.state.field("taker");
    return v.is_null() ? std::string("(none)") : v.as_string();
  };
  TicketDriver people(catalog);
  EXPECT_EQ(taker(people.user("li"), {}), "li");        // 客服专员
  EXPECT_EQ(taker(people.user("zhao"), {}), "(none)");  // an engineer is not 受理人
  EXPECT_EQ(taker(people.admin(), {}), "(none)");       // nor the administrator's token
  EXPECT_EQ(taker(people.admin(), {{"taker", Value("li")}}), "li");  // who may be named
  EXPECT_EQ(taker(people.admin(), {{"taker", Value("zhao")}}), "invalid_value taker");
}

// A node that picks among the engineers: by turns, or the least loaded, from what the projection
// says (here a map), recorded in NodeEntered so a replay never picks again.
class Picking : public ::testing::Test {
 protected:
  Picking() : catalog(reference_catalog()) {}
  void publish_flow(const char* pick) {
    std::string doc = std::string(R"({"name":"派工","form":"service_ticket","nodes":[
        {"id":"start","name":"开始","type":"start"},
        {"id":"fix","name":"处理","type":"fill","assignee":{"role":"engineer","pick":")") +
                      pick + R"("},"actions":["submit"]},
        {"id":"end","name":"结束","type":"end"}],
      "edges":[{"from":"start","to":"fix"},{"from":"fix","to":"end"}]})";
    Value v;
    std::string error;
    ASSERT_TRUE(parse_json(doc, &v, &error)) << error;
    testing::publish(catalog, decide_publish_flow(catalog, "pick_flow", v, "admin", 0));
  }
  std::string submit_one() {
    TicketDriver t(catalog);
    t.last_pick = [this](std::string_view role) { return last[std::string(role)]; };
    t.open_load = [this](std::string_view user) { return load[std::string(user)]; };
    auto r =
        t.run(t.user("li"), SubmitTicket{"service_ticket", "pick_flow", reference_submission()});
    EXPECT_TRUE(r.ok()) << r.error().message;
    for (const auto& e : t.events) {
      if (const Value* p = e.data.find("picked")) {
        EXPECT_EQ(p->string_or("role"), "engineer");
        last["engineer"] = p->string_or("user");  // what the projection does
        ++load[p->string_or("user")];
        EXPECT_EQ(t.state.assignees.size(), 1u);
        EXPECT_EQ(t.state.assignees[0].id, p->string_or("user"));
        return p->string_or("user");
      }
    }
    ADD_FAILURE() << "nobody picked";
    return "";
  }

  Catalog catalog;
  std::map<std::string, std::string> last;
  std::map<std::string, size_t> load;
};

TEST_F(Picking, RoundRobinTakesTurnsInIdOrder) {
  publish_flow("round_robin");
  EXPECT_EQ(submit_one(), "qian");
  EXPECT_EQ(submit_one(), "zhao");
  EXPECT_EQ(submit_one(), "qian");
  last["engineer"] = "someone-gone";  // a member who left: the turn goes on after their id
  EXPECT_EQ(submit_one(), "zhao");
}

TEST_F(Picking, LeastLoadedTakesTheFewestOpenTicketsTiesByTurn) {
  publish_flow("least_loaded");
  load = {{"qian", 3}, {"zhao", 1}};
  EXPECT_EQ(submit_one(), "zhao");  // 1 -> 2
  EXPECT_EQ(submit_one(), "zhao");  // 2 -> 3: now tied with qian
  EXPECT_EQ(submit_one(), "qian");  // the tie goes to the next in turn after zhao
}

TEST_F(Picking, AnAuditorInTheRoleIsNotPickedNorStaffsIt) {
  auto make_auditor = [&](const char* id) {
    UserChanges changes;
    changes.roles = std::vector<std::string>{"engineer", "auditor"};
    auto events = decide_change_user(catalog, id, changes, "admin", 1);
    ASSERT_TRUE(events.ok());
    for (const auto& e : events.value()) catalog.apply(e);
  };
  make_auditor("qian");
  publish_flow("round_robin");
  EXPECT_EQ(submit_one(), "zhao");
  EXPECT_EQ(submit_one(), "zhao");
  EXPECT_EQ(staffed_roles(catalog).count("engineer"), 1u);  // zhao still staffs it
  make_auditor("zhao");
  EXPECT_EQ(staffed_roles(catalog).count("engineer"), 0u);
}

TEST_F(Picking, RefusesABadPick) {
  Value v;
  std::string error;
  ASSERT_TRUE(parse_json(R"({"name":"x","form":"service_ticket","nodes":[
      {"id":"start","name":"开始","type":"start"},
      {"id":"fix","name":"处理","type":"fill","assignee":{"user":"zhao","pick":"round_robin"}},
      {"id":"end","name":"结束","type":"end"}],
    "edges":[{"from":"start","to":"fix"},{"from":"fix","to":"end"}]})",
                         &v, &error));
  auto r = decide_publish_flow(catalog, "bad", v, "admin", 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("assignee.pick: picks among a role"), std::string::npos);
}

}  // namespace
}  // namespace ticketd
