// Rules' lookup actions through decide/evolve only: the request a rule records, the answer's
// fields through the form's checks, failures, and answers that come twice.
#include <gtest/gtest.h>

#include "domain/rule.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

using testing::json;
using testing::reference_catalog;
using testing::reference_submission;
using testing::TicketDriver;
using Types = std::vector<std::string>;

constexpr char kLookupRule[] = R"({"name":"查询客户档案","form":"service_ticket",
  "trigger":{"type":"created"},
  "actions":[{"type":"lookup","source":"crm","path":"/customers",
              "query":{"name":"{{fields.customer_name}}","ticket":"{{ticket.id}}"},
              "fill":{"priority":"/level/priority","solution":"/history/0/summary"}}]})";

Actor system() { return Actor{kSystemActor, {}, false, false, false}; }

class Lookup : public ::testing::Test {
 protected:
  Lookup() : catalog(reference_catalog()), t(catalog) {
    testing::publish(catalog, decide_publish_rule(catalog, "crm", json(kLookupRule), "admin", 0));
    auto r =
        t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow", reference_submission()});
    EXPECT_TRUE(r.ok()) << r.error().message;
  }

  // The lookup the submission asked for: its request event's stream version.
  uint64_t requested() const {
    for (size_t i = 0; i < t.events.size(); ++i) {
      if (t.events[i].type == event_types::kLookupRequested) return i + 1;
    }
    return 0;
  }

  Catalog catalog;
  TicketDriver t;
};

TEST_F(Lookup, ARuleRecordsTheRequestWithTheTicketsValues) {
  uint64_t lookup = requested();
  ASSERT_GT(lookup, 0u);
  const Value& d = t.events[lookup - 1].data;
  EXPECT_EQ(d.string_or("source"), "crm");
  EXPECT_EQ(d.string_or("path"), "/customers");
  EXPECT_EQ(d["query"].to_json(), R"({"name":"华东精密机械有限公司","ticket":"T-000042"})");
  EXPECT_EQ(d["fill"].to_json(),
            R"({"priority":"/level/priority","solution":"/history/0/summary"})");
  EXPECT_EQ(t.events[lookup - 1].actor, kSystemActor);
  EXPECT_EQ(t.state.lookups_pending(), std::vector<uint64_t>{lookup});
}

TEST_F(Lookup, TheAnswerFillsFieldsOnceWithIdsFromTheLookup) {
  uint64_t lookup = requested();
  Value answer = json(R"({"level":{"priority":"高"},"history":[{"summary":"上月更换主板"}]})");
  StringPairs fill = {{"priority", "/level/priority"}, {"solution", "/history/0/summary"}};
  size_t before = t.events.size();
  auto r = t.run(system(), ApplyLookup{lookup, "crm", lookup_fill(answer, fill), ""});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(t.types_since(before), (Types{"LookupCompleted", "FieldsChanged"}));
  EXPECT_EQ(t.events[before].data["filled"].to_json(), R"(["priority","solution"])");
  EXPECT_EQ(t.events[before + 1].data.string_or("rule"), "crm");
  EXPECT_EQ(t.events[before + 1].actor, kSystemActor);
  EXPECT_EQ(t.state.field("priority"), Value("高"));
  EXPECT_EQ(t.state.field("solution"), Value("上月更换主板"));
  EXPECT_TRUE(t.state.lookups_pending().empty());
  ASSERT_TRUE(r.value()[0].id.has_value());
  EXPECT_EQ(*r.value()[0].id, lookup_event_id("T-000042", lookup));
  ASSERT_TRUE(r.value()[1].id.has_value());
  EXPECT_NE(*r.value()[1].id, *r.value()[0].id);
  // Not the ticket's first response: a rule's writes are no one's response.
  EXPECT_EQ(t.state.first_response_at, 0);

  // A second answer (a crash between the answer and its record, a racing worker) does nothing.
  auto again = t.run(system(), ApplyLookup{lookup, "crm", {{"priority", Value("低")}}, ""});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.value().empty());
  EXPECT_EQ(t.state.field("priority"), Value("高"));
}

TEST_F(Lookup, AnAnswerTheFormRefusesIsAFailureThatChangesNothing) {
  uint64_t lookup = requested();
  size_t before = t.events.size();
  auto r = t.run(
      system(),
      ApplyLookup{lookup, "crm", {{"solution", Value("有记录")}, {"priority", Value("紧急")}}, ""});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(t.types_since(before), (Types{"LookupFailed"}));
  std::string error = t.events[before].data.string_or("error");
  EXPECT_NE(error.find("does not fit the form"), std::string::npos) << error;
  EXPECT_NE(error.find("priority"), std::string::npos) << error;
  EXPECT_FALSE(t.state.fields.empty());
  EXPECT_EQ(t.state.field("solution"), Value());  // all or nothing
  EXPECT_TRUE(t.state.lookups_pending().empty());
}

TEST_F(Lookup, AFailedLookupIsRecordedWithItsReason) {
  uint64_t lookup = requested();
  size_t before = t.events.size();
  ASSERT_TRUE(t.run(system(), ApplyLookup{lookup, "crm", {}, "crm answered HTTP 404"}).ok());
  EXPECT_EQ(t.types_since(before), (Types{"LookupFailed"}));
  EXPECT_EQ(t.events[before].data.string_or("error"), "crm answered HTTP 404");
  EXPECT_EQ(t.events[before].data["lookup"], Value(static_cast<int64_t>(lookup)));
  EXPECT_TRUE(t.state.lookups_pending().empty());
}

TEST_F(Lookup, AnAnswerAfterTheCloseIsAFailure) {
  uint64_t lookup = requested();
  ASSERT_TRUE(t.run(t.admin(), CloseTicket{"重复工单"}).ok());
  size_t before = t.events.size();
  ASSERT_TRUE(t.run(system(), ApplyLookup{lookup, "crm", {{"solution", Value("x")}}, ""}).ok());
  EXPECT_EQ(t.types_since(before), (Types{"LookupFailed"}));
  EXPECT_NE(t.events[before].data.string_or("error").find("closed"), std::string::npos);
  EXPECT_EQ(t.state.field("solution"), Value());
}

TEST_F(Lookup, AnAnswerWithNothingToFillCompletesTheLookup) {
  uint64_t lookup = requested();
  size_t before = t.events.size();
  ASSERT_TRUE(t.run(system(), ApplyLookup{lookup, "crm", lookup_fill(json("{}"), {}), ""}).ok());
  EXPECT_EQ(t.types_since(before), (Types{"LookupCompleted"}));
  EXPECT_EQ(t.events[before].data["filled"].to_json(), "[]");
}

TEST(LookupRule, PathTemplatesAreFilledPercentEncoded) {
  Catalog c = reference_catalog();
  testing::publish(c, decide_publish_rule(c, "by_phone", json(R"({"name":"按电话查询",
    "form":"service_ticket","trigger":{"type":"created"},
    "actions":[{"type":"lookup","source":"crm","path":"/customers/{{fields.customer_phone}}/v1",
                "fill":{"solution":"/summary"}}]})"),
                                          "admin", 0));
  TicketDriver t(c);
  ASSERT_TRUE(
      t.run(t.user("li"), SubmitTicket{"service_ticket", "service_flow", reference_submission()})
          .ok());
  std::vector<std::string> paths;
  for (const auto& e : t.events) {
    if (e.type == event_types::kLookupRequested) paths.push_back(e.data.string_or("path"));
  }
  EXPECT_EQ(paths, std::vector<std::string>{"/customers/%2B86%20138%201234%205678/v1"});
  EXPECT_EQ(percent_encode("华东/精密 A&B-._~"),
            "%E5%8D%8E%E4%B8%9C%2F%E7%B2%BE%E5%AF%86%20A%26B-._~");
}

TEST(LookupRule, IsCheckedAgainstItsForm) {
  Catalog c = reference_catalog();
  auto refused = [&](const std::string& action) {
    std::string doc = R"({"name":"x","form":"service_ticket","trigger":{"type":"created"},
      "actions":[)" + action +
                      "]}";
    auto r = decide_publish_rule(c, "x", json(doc), "admin", 0);
    EXPECT_FALSE(r.ok()) << action;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","fill":{"nope":"/a"}})")
                .find("rule.actions[0].fill.nope: unknown field"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","fill":{"images":"/a"}})")
                .find("rule.actions[0].fill.images"),
            std::string::npos);
  EXPECT_NE(
      refused(R"({"type":"lookup","source":"crm","fill":{"solution":"a"}})").find("JSON pointer"),
      std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","fill":{}})").find("rule.actions[0].fill"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"c r m","fill":{"solution":"/a"}})")
                .find("rule.actions[0].source"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","path":"customers?x=1",
                        "fill":{"solution":"/a"}})")
                .find("rule.actions[0].path"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","path":"/c/{{fields.nope}}",
                        "fill":{"solution":"/a"}})")
                .find("rule.actions[0].path: unknown template variable {{fields.nope}}"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","path":"/c/{x}",
                        "fill":{"solution":"/a"}})")
                .find("rule.actions[0].path"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","query":{"q":"{{fields.nope}}"},
                        "fill":{"solution":"/a"}})")
                .find("rule.actions[0].query.q: unknown template variable {{fields.nope}}"),
            std::string::npos);
  EXPECT_NE(refused(R"({"type":"lookup","source":"crm","fill":{"solution":"/a"},"url":"x"})")
                .find("rule.actions[0].url: unknown property"),
            std::string::npos);
}

TEST(JsonPointer, ResolvesAsRfc6901Says) {
  Value doc = json(R"({"a":{"b/c":1,"m~n":2,"":3},"list":[10,20],"null":null})");
  EXPECT_EQ(resolve_pointer(doc, "")->to_json(), doc.to_json());
  EXPECT_EQ(*resolve_pointer(doc, "/a/b~1c"), Value(1));
  EXPECT_EQ(*resolve_pointer(doc, "/a/m~0n"), Value(2));
  EXPECT_EQ(*resolve_pointer(doc, "/a/"), Value(3));
  EXPECT_EQ(*resolve_pointer(doc, "/list/1"), Value(20));
  EXPECT_TRUE(resolve_pointer(doc, "/null")->is_null());
  EXPECT_EQ(resolve_pointer(doc, "/list/2"), nullptr);
  EXPECT_EQ(resolve_pointer(doc, "/list/01"), nullptr);
  EXPECT_EQ(resolve_pointer(doc, "/list/-"), nullptr);
  EXPECT_EQ(resolve_pointer(doc, "/a/b~1c/x"), nullptr);
  EXPECT_EQ(resolve_pointer(doc, "/missing"), nullptr);
  EXPECT_EQ(resolve_pointer(doc, "a"), nullptr);
  // A pointer that names nothing leaves its field out; one that names null clears it.
  Object filled = lookup_fill(doc, {{"x", "/missing"}, {"y", "/null"}, {"z", "/list/0"}});
  EXPECT_EQ(Value(filled).to_json(), R"({"y":null,"z":10})");
}

}  // namespace
}  // namespace ticketd
