// Forms, conditions and flows: every field type, every operator, every way a flow can be invalid.
#include <gtest/gtest.h>

#include "domain/condition.h"
#include "domain/flow.h"
#include "domain/form.h"
#include "domain/time_format.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

using testing::json;

FormDef form_of(const std::string& fields_json) {
  auto f = parse_form("f", json(R"({"name":"表单","fields":)" + fields_json + "}"));
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  return f.ok() ? f.value() : FormDef{};
}

const Lookups kLookups{
    [](std::string_view u, std::string_view role) {
      return u == "zhang" && (role.empty() || role == "cs_supervisor");
    },
    [](std::string_view a) { return std::string(a == "att-1" ? "image/png" : ""); },
    [](std::string_view t) { return std::string(t == "T-000001" ? "f" : ""); }};

struct FieldCase {
  const char* field;  // one field definition
  const char* value;  // JSON
  const char* code;   // "" = valid
};

TEST(FormFields, EveryTypeValidAndInvalid) {
  const FieldCase cases[] = {
      {R"({"key":"a","type":"text","max_length":3})", R"("客户名")", ""},
      {R"({"key":"a","type":"text","max_length":3})", R"("客户名称")", codes::kOutOfRange},
      {R"({"key":"a","type":"text"})", "12", codes::kWrongType},
      {R"({"key":"a","type":"textarea"})", R"("第一行\n第二行")", ""},
      {R"({"key":"a","type":"textarea"})", R"("第一行\r\n\t第二行")", ""},
      {R"({"key":"a","type":"textarea"})", R"("响铃\u0007")", codes::kInvalidValue},
      {R"({"key":"a","type":"textarea"})", R"("下一行\u0085")", codes::kInvalidValue},
      {R"({"key":"a","type":"text"})", R"("客户\n名称")", codes::kInvalidValue},
      {R"({"key":"a","type":"text"})", R"("x\u0000y")", codes::kInvalidValue},
      {R"({"key":"a","type":"text"})", R"("Café\u00a0Noir")", ""},
      {R"({"key":"a","type":"number","min":0,"max":10})", "10", ""},
      {R"({"key":"a","type":"number","min":0,"max":10})", "10.5", codes::kOutOfRange},
      {R"({"key":"a","type":"number"})", R"("5")", codes::kWrongType},
      {R"({"key":"a","type":"select","options":["是","否"]})", R"("是")", ""},
      {R"({"key":"a","type":"select","options":["是","否"]})", R"("也许")", codes::kNotAnOption},
      {R"({"key":"a","type":"multiselect","options":["x","y"]})", R"(["x","y"])", ""},
      {R"({"key":"a","type":"multiselect","options":["x","y"]})", R"(["x","x"])",
       codes::kInvalidValue},
      {R"({"key":"a","type":"multiselect","options":["x","y"]})", R"(["z"])", codes::kNotAnOption},
      {R"({"key":"a","type":"multiselect","options":["x","y"]})", R"("x")", codes::kWrongType},
      {R"({"key":"a","type":"date"})", R"("2026-02-28")", ""},
      {R"({"key":"a","type":"date"})", R"("2026-02-29")", codes::kWrongType},
      {R"({"key":"a","type":"datetime"})", R"("2026-11-25T16:00:00+08:00")", ""},
      {R"({"key":"a","type":"datetime"})", R"("yesterday")", codes::kWrongType},
      {R"({"key":"a","type":"person"})", R"("zhang")", ""},
      {R"({"key":"a","type":"person"})", R"("ghost")", codes::kInvalidValue},
      {R"({"key":"a","type":"person","role":"cs_supervisor"})", R"("zhang")", ""},
      {R"({"key":"a","type":"person","role":"engineer"})", R"("zhang")", codes::kInvalidValue},
      {R"({"key":"a","type":"attachment"})", R"("att-1")", ""},
      {R"({"key":"a","type":"attachment","multiple":true})", R"(["att-1"])", ""},
      {R"({"key":"a","type":"image","multiple":true})", R"(["att-9"])", codes::kInvalidValue},
      {R"({"key":"a","type":"image"})", R"(["att-1"])", codes::kWrongType},
      {R"({"key":"a","type":"phone"})", R"("+86 138-1234-5678")", ""},
      {R"({"key":"a","type":"phone"})", R"("call me")", codes::kInvalidValue},
      {R"({"key":"a","type":"phone"})", R"("123")", codes::kInvalidValue},
      {R"({"key":"a","type":"email"})", R"("kefu@example.com.cn")", ""},
      {R"({"key":"a","type":"email"})", R"("kefu@localhost")", codes::kInvalidValue},
      {R"({"key":"a","type":"email"})", R"("a b@example.com")", codes::kInvalidValue},
      {R"({"key":"a","type":"email"})", R"("a\u0000b@example.com")", codes::kInvalidValue},
      {R"({"key":"a","type":"relation","form":"f"})", R"("T-000001")", ""},
      {R"({"key":"a","type":"relation","form":"f"})", R"("T-999999")", codes::kInvalidValue},
      {R"({"key":"a","type":"relation","form":"g"})", R"("T-000001")", codes::kInvalidValue},
      {R"({"key":"a","type":"relation"})", R"("T-000001")", ""},
      {R"({"key":"a","type":"rating"})", "5", ""},
      {R"({"key":"a","type":"rating"})", "0", codes::kOutOfRange},
      {R"({"key":"a","type":"rating"})", "4.5", codes::kWrongType},
      {R"({"key":"a","type":"checkbox"})", "true", ""},
      {R"({"key":"a","type":"checkbox"})", R"("true")", codes::kWrongType},
  };
  for (const auto& c : cases) {
    FormDef form = form_of(std::string("[") + c.field + "]");
    ASSERT_EQ(form.fields.size(), 1u) << c.field;
    auto r = check_field_value(form.fields[0], json(c.value), kLookups);
    if (std::string(c.code).empty()) {
      EXPECT_TRUE(r.ok()) << c.field << " " << c.value << ": " << (r.ok() ? "" : r.error().message);
    } else {
      ASSERT_FALSE(r.ok()) << c.field << " " << c.value;
      EXPECT_EQ(r.error().code, c.code) << c.field << " " << c.value;
      EXPECT_EQ(r.error().field, "a");
    }
  }
}

// A refused choice shows what may be chosen: the options, or how many.
TEST(FormFields, RefusedChoicesSayWhatMayBeChosen) {
  auto message = [](const std::string& field, const char* value) {
    FormDef form = form_of("[" + field + "]");
    auto r = check_field_value(form.fields.at(0), json(value), kLookups);
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  const std::string types = R"({"key":"t","label":"问题类型","type":"select",)"
                            R"("options":["产品咨询","功能故障","安装指导"]})";
  EXPECT_EQ(message(types, R"("其他")"),
            "问题类型 (t): \"其他\" is not one of the options (产品咨询, 功能故障, 安装指导)");
  std::string many = R"({"key":"m","label":"型号","type":"multiselect","options":[)";
  for (int i = 1; i <= 20; ++i) many += (i > 1 ? ",\"" : "\"") + std::to_string(i) + "\"";
  many += "]}";
  EXPECT_EQ(message(many, R"(["21"])"),
            "型号 (m): \"21\" is not one of the options "
            "(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, … 20 in all)");
  const std::string parts =
      R"({"key":"p","label":"备件","type":"multiselect","options":["a","b","c"],"min":1,"max":2})";
  EXPECT_EQ(message(parts, "[]"), "备件 (p): 0 chosen, choose 1 to 2");
  EXPECT_EQ(message(parts, R"(["a","b","c"])"), "备件 (p): 3 chosen, choose 1 to 2");
  EXPECT_EQ(message(parts, R"(["a","b"])"), "accepted");
  const std::string at_most =
      R"({"key":"q","label":"备件","type":"multiselect","options":["a","b"],"max":1})";
  EXPECT_EQ(message(at_most, R"(["a","b"])"), "备件 (q): 2 chosen, choose at most 1");
}

TEST(FormDefinitions, ErrorsNameThePath) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"fields":[]})", "form.name"},
      {R"({"name":"x","fields":[]})", "form.fields"},
      {R"({"name":"x","fields":[{"key":"a","type":"colour"}]})", "form.fields[0].type"},
      {R"({"name":"x","fields":[{"key":"a","type":"text"},{"key":"a","type":"text"}]})",
       "form.fields[1].key"},
      {R"({"name":"x","fields":[{"key":"a","type":"select"}]})", "form.fields[0].options"},
      {R"({"name":"x","fields":[{"key":"a","type":"text","options":["x"]}]})",
       "form.fields[0].options"},
      {R"({"name":"x","fields":[{"key":"a","type":"text","auto":"now"}]})", "form.fields[0].auto"},
      {R"({"name":"x","fields":[{"key":"a","type":"select","options":["x"],"default":"y"}]})",
       "form.fields[0].default"},
      {R"({"name":"x","fields":[{"key":"a","type":"number","min":5,"max":1}]})",
       "form.fields[0].min"},
      {R"({"name":"x","fields":[{"key":"a","type":"text","colour":1}]})", "form.fields[0].colour"},
      {R"({"name":"x","fields":[{"key":"a","type":"text","role":"engineer"}]})",
       "form.fields[0].role"},
      {R"({"name":"x","fields":[{"key":"a","type":"person","role":""}]})", "form.fields[0].role"},
      {R"({"name":"x","fields":[{"key":"a.b","type":"text"}]})", "form.fields[0].key"},
      {R"({"name":"x","fields":[{"key":"a","label":"","type":"text"}]})", "form.fields[0].label"},
      {R"({"name":"x","fields":[{"key":"a","label":5,"type":"text"}]})", "form.fields[0].label"},
  };
  for (auto [doc, path] : cases) {
    auto r = parse_form("f", json(doc));
    ASSERT_FALSE(r.ok()) << doc;
    EXPECT_EQ(r.error().code, codes::kInvalidDefinition);
    EXPECT_EQ(r.error().message.rfind(path, 0), 0u)
        << r.error().message << " should start with " << path;
  }
  // Without a label the key shows; a stored form with an empty one (taken before) shows it too.
  auto unlabelled = parse_form("f", json(R"({"name":"x","fields":[{"key":"a","type":"text"}]})"));
  ASSERT_TRUE(unlabelled.ok());
  EXPECT_EQ(unlabelled.value().fields[0].label, "a");
  auto stored = parse_stored_form(
      "f", json(R"({"name":"x","fields":[{"key":"a","label":"","type":"text"}]})"));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored.value().fields[0].label, "a");
}

TEST(Conditions, EveryOperator) {
  FormDef form =
      form_of(R"([{"key":"n","type":"number"},{"key":"s","type":"select","options":["简单","复杂"]},
    {"key":"m","type":"multiselect","options":["x","y"]},{"key":"t","type":"text"},
    {"key":"d","type":"datetime"},{"key":"e","type":"text"}])");
  Object fields = {{"n", Value(5)},
                   {"s", Value("简单")},
                   {"m", Value(Array{Value("x")})},
                   {"t", Value("打印机卡纸")},
                   {"d", Value("2026-11-25T08:00:00Z")}};
  const std::pair<const char*, bool> cases[] = {
      {R"({"field":"s","op":"eq","value":"简单"})", true},
      {R"({"field":"s","op":"ne","value":"简单"})", false},
      {R"({"field":"s","op":"in","value":["简单","复杂"]})", true},
      {R"({"field":"s","op":"not_in","value":["复杂"]})", true},
      {R"({"field":"n","op":"gt","value":5})", false},
      {R"({"field":"n","op":"gte","value":5})", true},
      {R"({"field":"n","op":"lt","value":6})", true},
      {R"({"field":"n","op":"lte","value":4})", false},
      {R"({"field":"d","op":"gt","value":"2026-11-25T15:59:00+08:00"})", true},
      {R"({"field":"t","op":"contains","value":"卡纸"})", true},
      {R"({"field":"m","op":"contains","value":"y"})", false},
      {R"({"field":"e","op":"empty"})", true},
      {R"({"field":"t","op":"not_empty"})", true},
      {R"({"all":[{"field":"n","op":"eq","value":5},{"field":"s","op":"eq","value":"简单"}]})",
       true},
      {R"({"any":[{"field":"n","op":"eq","value":4},{"field":"s","op":"eq","value":"复杂"}]})",
       false},
      {R"({"not":{"field":"e","op":"empty"}})", false},
  };
  for (auto [doc, expected] : cases) {
    auto c = parse_condition(json(doc), form, "when");
    ASSERT_TRUE(c.ok()) << doc << ": " << c.error().message;
    EXPECT_EQ(evaluate(c.value(), fields), expected) << doc;
  }
  const std::pair<const char*, const char*> bad[] = {
      {R"({"field":"complexty","op":"eq","value":"简单"})",
       "when.field: unknown field \"complexty\" in form f"},
      {R"({"field":"s","op":"eq","value":"简"})", "when.value"},
      {R"({"field":"s","op":"gt","value":"简单"})", "when.op"},
      {R"({"field":"n","op":"eq","value":"5"})", "when.value"},
      {R"({"field":"n","op":"like","value":5})", "when.op"},
      {R"({"field":"n","op":"empty","value":5})", "when.value"},
      {R"({"all":[]})", "when.all"},
      {R"({"any":[{"field":"x","op":"empty"}]})", "when.any[0].field"},
  };
  for (auto [doc, prefix] : bad) {
    auto c = parse_condition(json(doc), form, "when");
    ASSERT_FALSE(c.ok()) << doc;
    EXPECT_EQ(c.error().message.rfind(prefix, 0), 0u) << c.error().message;
  }
}

TEST(FlowDefinitions, EveryInvalidCase) {
  Catalog catalog = testing::reference_catalog();
  const FormDef& form = *catalog.form("service_ticket");
  const std::string ok_nodes = R"([{"id":"s","type":"start"},
      {"id":"a","name":"受理","type":"approval","assignee":{"role":"cs_supervisor"}},
      {"id":"e","type":"end"}])";
  const std::string ok_edges = R"([{"from":"s","to":"a"},{"from":"a","to":"e"}])";
  auto flow = [&](const std::string& nodes, const std::string& edges) {
    return parse_flow("fl",
                      json(R"({"name":"流程","form":"service_ticket","nodes":)" + nodes +
                           R"(,"edges":)" + edges + "}"),
                      form);
  };
  ASSERT_TRUE(flow(ok_nodes, ok_edges).ok());
  const std::tuple<std::string, std::string, const char*> cases[] = {
      {R"([{"id":"a","type":"approval","assignee":{"role":"r"}},{"id":"e","type":"end"}])",
       R"([{"from":"a","to":"e"}])", "exactly one start"},
      {R"([{"id":"s","type":"start"},{"id":"s2","type":"start"},{"id":"e","type":"end"}])",
       R"([{"from":"s","to":"e"},{"from":"s2","to":"e"}])", "exactly one start"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"}}])",
       R"([{"from":"s","to":"a"}])", "at least one end"},
      {ok_nodes, R"([{"from":"s","to":"a"},{"from":"a","to":"zz"}])",
       "flow.edges[1].to: unknown node"},
      {ok_nodes, R"([{"from":"s","to":"e"},{"from":"a","to":"e"}])",
       "cannot be reached from start"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"actions":["approve"]},
          {"id":"b","type":"fill","assignee":{"role":"r"}},{"id":"e","type":"end"}])",
       R"([{"from":"s","to":"a"},{"from":"a","to":"e"},{"from":"a","to":"b"},{"from":"b","to":"b"}])",
       "no end can be reached from node \"b\""},
      {ok_nodes,
       R"([{"from":"s","to":"a"},{"from":"a","to":"e","when":{"field":"complexity","op":"eq","value":"简单"}}])",
       "no default edge"},
      {ok_nodes,
       R"([{"from":"s","to":"a"},{"from":"a","to":"e","when":{"field":"complexty","op":"eq","value":"简单"}},{"from":"a","to":"e"}])",
       "flow.edges[1].when.field: unknown field \"complexty\" in form service_ticket"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"field":"customer_name"}},{"id":"e","type":"end"}])",
       ok_edges, "is not of type person"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"writable":["nope"]},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].writable: unknown field"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"required":["nope"]},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].required"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval"},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].assignee"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"actions":["submit"]},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].actions"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"reject_to":"s"},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].reject_to"},
      {R"([{"id":"s","type":"start"},{"id":"s","type":"end"}])", R"([])", "duplicate node id"},
      {ok_nodes, R"([{"from":"s","to":"a"},{"from":"a","to":"e"},{"from":"e","to":"a"}])",
       "an end node has no way out"},
      // Nodes no one could leave.
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"actions":["transfer"]},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].actions: an approval node must offer approve or reject"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"actions":[]},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].actions: an approval node must offer approve or reject"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"fill","assignee":{"role":"customer"}},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].assignee: the customer acts in the portal only by confirming"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"customer"},"actions":["reject"]},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].assignee: the customer acts in the portal only by confirming"},
      {R"([{"id":"s","type":"start","assignee":{"role":"customer"}},{"id":"a","type":"approval","assignee":{"role":"r"}},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[0].assignee: the customer acts in the portal only by confirming"},
      {R"([{"id":"s","type":"start"},{"id":"a","name":"","type":"approval","assignee":{"role":"r"}},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].name: a non-empty string is required"},
      {R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"auditor"}},{"id":"e","type":"end"}])",
       ok_edges, "flow.nodes[1].assignee.role: auditors read everything and change nothing"},
  };
  for (const auto& [nodes, edges, expected] : cases) {
    auto r = flow(nodes, edges);
    ASSERT_FALSE(r.ok()) << expected;
    EXPECT_NE(r.error().message.find(expected), std::string::npos)
        << "got: " << r.error().message << "\nwanted: " << expected;
  }
  // Reject alone is enough to leave; and a flow the log holds loads whatever came since.
  EXPECT_TRUE(
      flow(
          R"([{"id":"s","type":"start"},{"id":"a","type":"approval","assignee":{"role":"r"},"actions":["reject"]},{"id":"e","type":"end"}])",
          ok_edges)
          .ok());
  auto stored = parse_stored_flow(
      "fl",
      json(R"({"name":"流程","form":"service_ticket","nodes":[{"id":"s","type":"start"},
        {"id":"a","name":"","type":"approval","assignee":{"role":"customer"},"actions":[]},
        {"id":"e","type":"end"}],"edges":)" +
           ok_edges + "}"),
      form);
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_EQ(stored.value().node("a")->name, "a");
}

// A misspelt property anywhere in a rule is refused, not ignored (a notify with "templte" would
// otherwise send empty messages).
TEST(RuleDefinitions, UnknownPropertiesAreRefusedWhereverTheyAre) {
  Catalog catalog = testing::reference_catalog();
  const FormDef& form = *catalog.form("service_ticket");
  auto rule = [&](const std::string& trigger, const std::string& action) {
    return parse_rule("r",
                      json(R"({"name":"规则","form":"service_ticket","trigger":)" + trigger +
                           R"(,"actions":[)" + action + "]}"),
                      form);
  };
  const std::string created = R"({"type":"created"})";
  const std::string close = R"({"type":"close"})";
  ASSERT_TRUE(rule(created, close).ok());
  const std::tuple<std::string, std::string, const char*> cases[] = {
      {R"({"type":"created","node":"accept"})", close, "rule.trigger.node: unknown property"},
      {R"({"type":"field_changed","field":"priority","after":"5m"})", close,
       "rule.trigger.after: unknown property"},
      {R"({"type":"idle","node":"accept","after":"5m","target":"resolution"})", close,
       "rule.trigger.target: unknown property"},
      {R"({"type":"sla_breached","field":"priority"})", close,
       "rule.trigger.field: unknown property"},
      {R"({"type":"replied","by":"customer","node":"accept"})", close,
       "rule.trigger.node: unknown property"},
      {R"({"type":"replied","by":"agent"})", close, "rule.trigger.by: \"customer\""},
      {R"({"type":"replied"})", close, "rule.trigger.by: \"customer\""},
      {created,
       R"({"type":"notify","to":{"role":"cs_supervisor"},"channel":"todo","template":"{{comment.text}}"})",
       "rule.actions[0].template: {{comment.text}} is filled only for a rule triggered by"},
      {created, R"({"type":"lookup","source":"crm","path":"/c/{{ticket.portal_code}}"})",
       "rule.actions[0].path: {{ticket.portal_code}} goes in notifications only"},
      {created, R"({"type":"notify","to":{"role":"cs_supervisor"},"channel":"sms","templte":"x"})",
       "rule.actions[0].templte: unknown property"},
      {created, R"({"type":"set_field","field":"priority","value":"高","valeu":"低"})",
       "rule.actions[0].valeu: unknown property"},
      {created, R"({"type":"close","reason":"x"})", "rule.actions[0].reason: unknown property"},
      {created, R"({"type":"notify","to":{"role":"cs_supervisor"},"channel":"sms","template":""})",
       "rule.actions[0].template: a non-empty string is required"},
      {created, R"({"type":"notify","to":{"role":"cs_supervisor"},"channel":"sms"})",
       "rule.actions[0].template: a non-empty string is required"},
      {created, R"({"type":"notify","to":{"user":""},"channel":"todo","template":"x"})",
       "rule.actions[0].to.user: a non-empty user is required"},
  };
  for (const auto& [trigger, action, expected] : cases) {
    auto r = rule(trigger, action);
    ASSERT_FALSE(r.ok()) << expected;
    EXPECT_EQ(r.error().message.rfind(expected, 0), 0u)
        << "got: " << r.error().message << "\nwanted: " << expected;
  }
}

// A node_entered or idle trigger names a node some flow of the form has: one that none has would
// never be entered, and the rule would never fire without a word. A rule the log holds loads
// whatever its node (the flow may have changed since).
TEST(RuleDefinitions, ATriggerNamesANodeOfAFlowOfTheForm) {
  Catalog catalog = testing::reference_catalog();
  auto doc = [](const std::string& trigger) {
    return json(R"({"name":"规则","form":"service_ticket","trigger":)" + trigger +
                R"(,"actions":[{"type":"set_field","field":"priority","value":"高"}]})");
  };
  for (const char* trigger : {R"({"type":"node_entered","node":"dispatch"})",
                              R"({"type":"idle","node":"accept","after":"30m"})"}) {
    EXPECT_TRUE(decide_publish_rule(catalog, "r", doc(trigger), "admin", 0).ok()) << trigger;
  }
  for (const char* trigger : {R"({"type":"node_entered","node":"moon"})",
                              R"({"type":"idle","node":"moon","after":"30m"})"}) {
    auto r = decide_publish_rule(catalog, "r", doc(trigger), "admin", 0);
    ASSERT_FALSE(r.ok()) << trigger;
    EXPECT_EQ(r.error().code, codes::kInvalidDefinition);
    EXPECT_EQ(r.error().message,
              "rule.trigger.node: no flow of form service_ticket has a node \"moon\"");
    auto draft = parse_rule_in_catalog(catalog, "r", doc(trigger), *catalog.form("service_ticket"));
    ASSERT_FALSE(draft.ok());
    EXPECT_EQ(draft.error().message, r.error().message);
  }
  auto event = decide_publish_rule(catalog, "moon",
                                   doc(R"({"type":"node_entered","node":"accept"})"), "admin", 0);
  ASSERT_TRUE(event.ok());
  DomainEvent published = *event.value();
  Object data = published.data.as_object();
  for (auto& [k, v] : data) {
    if (k == "document") v = doc(R"({"type":"node_entered","node":"moon"})");
  }
  published.data = Value(std::move(data));
  ASSERT_TRUE(catalog.apply(published));
  ASSERT_NE(catalog.rule("moon"), nullptr);
  EXPECT_EQ(catalog.rule("moon")->trigger.node, "moon");
}

// The zone a rule's texts show times in is one the tz database has. A published one the database
// no longer knows (an older tzdata on a restored server) keeps the rule: its texts show times as
// stored until the zone is known again.
TEST(RuleDefinitions, TimeZoneIsKnownWhenPublishedAndKeptWhenStored) {
  Catalog catalog = testing::reference_catalog();
  const FormDef& form = *catalog.form("service_ticket");
  auto doc = [](const std::string& zone) {
    return json(R"({"name":"规则","form":"service_ticket","time_zone":)" + zone +
                R"(,"trigger":{"type":"created"},"actions":[{"type":"close"}]})");
  };
  auto shanghai = parse_rule("r", doc(R"("Asia/Shanghai")"), form);
  ASSERT_TRUE(shanghai.ok());
  EXPECT_EQ(shanghai.value().time_zone, "Asia/Shanghai");
  EXPECT_EQ(shanghai.value().zone, find_time_zone("Asia/Shanghai"));
  for (const char* zone : {R"("Mars/Olympus")", R"("")", "8"}) {
    auto r = parse_rule("r", doc(zone), form);
    ASSERT_FALSE(r.ok()) << zone;
    EXPECT_EQ(r.error().message.rfind("rule.time_zone: ", 0), 0u) << r.error().message;
  }
  auto stored = parse_stored_rule("r", doc(R"("Mars/Olympus")"), form);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored.value().time_zone, "Mars/Olympus");
  EXPECT_EQ(stored.value().zone, nullptr);
}

// The company settings: one document, versioned like a definition. Until an administrator
// changes them, the defaults (version 0, UTC, which changes nothing: `zone` nullptr).
TEST(CompanySettings, AreChangedAsADefinitionIs) {
  Catalog c = testing::reference_catalog();
  EXPECT_EQ(c.settings().version, 0u);
  EXPECT_EQ(c.settings().time_zone, "UTC");
  EXPECT_EQ(c.settings().zone, nullptr);
  // The defaults are what a reader finds before any change.
  EXPECT_EQ(c.settings().document, json(R"({"time_zone":"UTC","reopen_days":7})"));
  EXPECT_EQ(c.settings().reopen_days, 7);
  EXPECT_EQ(c.settings_at(1), nullptr);

  // What a client read from GET (with its id and version) may be put back.
  auto first = decide_change_settings(
      c, json(R"({"id":"company","version":0,"time_zone":"Asia/Shanghai"})"), "admin", 7);
  ASSERT_TRUE(first.ok() && first.value()) << (first.ok() ? "" : first.error().message);
  EXPECT_EQ(first.value()->type, "SettingsChanged");
  EXPECT_EQ(first.value()->data.to_json(),
            R"({"id":"company","version":1,"document":{"time_zone":"Asia/Shanghai"}})");
  ASSERT_TRUE(c.apply(*first.value()));
  EXPECT_EQ(c.settings().version, 1u);
  EXPECT_EQ(c.settings().zone, find_time_zone("Asia/Shanghai"));
  // The same document again publishes nothing; going back to UTC is a version of its own.
  auto same = decide_change_settings(c, json(R"({"time_zone":"Asia/Shanghai"})"), "admin", 8);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same.value());
  testing::publish(
      c, decide_change_settings(c, json(R"({"time_zone":"UTC","name":"华东精密"})"), "admin", 9));
  EXPECT_EQ(c.settings().version, 2u);
  EXPECT_EQ(c.settings().zone, nullptr);
  EXPECT_EQ(c.settings().name, "华东精密");
  // A hundred characters are taken, Chinese ones too (three bytes each).
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += "华";
  EXPECT_TRUE(decide_change_settings(c, json(R"({"time_zone":"UTC","name":")" + hundred + "\"}"),
                                     "admin", 9)
                  .ok());
  EXPECT_EQ(c.settings_at(1)->name, "");
  ASSERT_NE(c.settings_at(1), nullptr);
  EXPECT_EQ(c.settings_at(1)->time_zone, "Asia/Shanghai");

  for (const auto& [doc, message] : std::vector<std::pair<std::string, std::string>>{
           {R"({"time_zone":"Asia/Beijing"})",
            "settings.time_zone: unknown time zone \"Asia/Beijing\""},
           {R"({"time_zone":8})", "settings.time_zone: an IANA time zone name"},
           {R"({})", "settings.time_zone: required"},
           {R"({"time_zone":"UTC","language":"zh"})", "settings.language: unknown property"},
           {R"({"time_zone":"UTC","name":8})", "settings.name: must be a string"},
           {R"({"time_zone":"UTC","name":")" + std::string(101, 'x') + "\"}",
            "settings.name: at most 100 characters"},
           {R"("UTC")", "settings: must be a JSON object"}}) {
    auto r = decide_change_settings(c, json(doc), "admin", 10);
    ASSERT_FALSE(r.ok()) << doc;
    EXPECT_EQ(r.error().code, codes::kInvalidDefinition);
    EXPECT_EQ(r.error().message.rfind(message, 0), 0u) << r.error().message;
  }
  // A zone an older tz database on a restored server lacks still loads: times show in UTC.
  DomainEvent stored = *first.value();
  stored.data = json(R"({"id":"company","version":3,"document":{"time_zone":"Mars/Olympus"}})");
  ASSERT_TRUE(c.apply(stored));
  EXPECT_EQ(c.settings().time_zone, "Mars/Olympus");
  EXPECT_EQ(c.settings().zone, nullptr);
  // So does a name longer than is taken now.
  stored.data = json(R"({"id":"company","version":4,"document":{"time_zone":"UTC","name":")" +
                     std::string(300, 'x') + "\"}}");
  ASSERT_TRUE(c.apply(stored));
  EXPECT_EQ(c.settings().name.size(), 300u);
}

// What an earlier build published stays in the catalog when the log is replayed, though this
// build would refuse to publish it now.
TEST(RuleDefinitions, AStoredRuleWithAPropertyRefusedSinceStillLoads) {
  Catalog catalog = testing::reference_catalog();
  Value doc = json(R"({"name":"旧规则","form":"service_ticket",
    "trigger":{"type":"created","node":"accept"},
    "actions":[{"type":"close","reason":"old"}]})");
  EXPECT_FALSE(decide_publish_rule(catalog, "old", doc, "admin", 0).ok());
  auto event = decide_publish_rule(catalog, "old", json(R"({"name":"旧规则","form":"service_ticket",
    "trigger":{"type":"created"},"actions":[{"type":"close"}]})"),
                                   "admin", 0);
  ASSERT_TRUE(event.ok());
  DomainEvent published = *event.value();
  Object data = published.data.as_object();
  for (auto& [k, v] : data) {
    if (k == "document") v = doc;
  }
  published.data = Value(std::move(data));
  ASSERT_TRUE(catalog.apply(published));
  ASSERT_NE(catalog.rule("old"), nullptr);
  EXPECT_EQ(catalog.rule("old")->actions.size(), 1u);
}

// Checks that came later (control characters in text) refuse a new default or set_field value,
// but a form or rule the log already holds loads as it was published.
TEST(FormDefinitions, AStoredValueRefusedSinceStillLoads) {
  Catalog catalog = testing::reference_catalog();
  Value form = json(R"({"name":"旧表单","fields":[
    {"key":"title","label":"标题","type":"text","default":"第一行\n第二行"}]})");
  auto refused = decide_publish_form(catalog, "old_form", form, "admin", 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "form.fields[0].default: 标题 (title): has a line break at character 4: one line only");

  DomainEvent published{
      event_types::kFormPublished,
      Value(Object{{"id", Value("old_form")}, {"version", Value(1)}, {"document", form}}), "admin",
      0, std::nullopt};
  ASSERT_TRUE(catalog.apply(published));
  ASSERT_NE(catalog.form("old_form"), nullptr);
  EXPECT_EQ(catalog.form("old_form")->fields[0].default_value, Value("第一行\n第二行"));

  Value rule = json(R"({"name":"旧规则","form":"old_form","trigger":{"type":"created"},
    "actions":[{"type":"set_field","field":"title","value":"甲\u0007乙"}]})");
  EXPECT_FALSE(decide_publish_rule(catalog, "old_rule", rule, "admin", 0).ok());
  DomainEvent stored{event_types::kRulePublished,
                     Value(Object{{"id", Value("old_rule")},
                                  {"version", Value(1)},
                                  {"form_version", Value(1)},
                                  {"document", rule}}),
                     "admin", 0, std::nullopt};
  ASSERT_TRUE(catalog.apply(stored));
  ASSERT_NE(catalog.rule("old_rule"), nullptr);
  EXPECT_EQ(catalog.rule("old_rule")->actions[0].value, Value("甲\u0007乙"));
}

// A definition's texts are shown, printed and exported as put: a control character in any of
// them (or in a member's name) is refused with its path; line breaks and tabs are taken.
TEST(Publishing, ControlCharactersInADefinitionAreRefusedWithTheirPath) {
  Catalog c = testing::reference_catalog();
  auto outcome = [](const Result<std::optional<DomainEvent>>& r) {
    return r.ok() ? std::string("accepted") : r.error().code + ": " + r.error().message;
  };
  const std::string only = " (only line breaks and tabs are taken)";
  EXPECT_EQ(
      outcome(
          decide_publish_form(c, "f", json(R"({"name":"测\u0000试","fields":[]})"), "admin", 0)),
      "invalid_definition: form.name: has the control character U+0000 at character 2" + only);
  EXPECT_EQ(
      outcome(decide_publish_form(
          c, "f", json(R"({"name":"测试","fields":[{"key":"a","label":"A\u0007","type":"select",
                         "options":["甲","乙"]}]})"),
          "admin", 0)),
      "invalid_definition: form.fields[0].label: has the control character U+0007 at "
      "character 2" +
          only);
  EXPECT_EQ(outcome(decide_publish_form(c, "f",
                                        json(R"({"name":"测试","fields":[{"key":"a","type":"select",
                         "options":["甲","乙\u0085"]}]})"),
                                        "admin", 0)),
            "invalid_definition: form.fields[0].options[1]: has the control character U+0085 at "
            "character 2" +
                only);
  EXPECT_EQ(outcome(decide_publish_form(c, "f", json(R"({"name":"测试","fields":[],"x\u001b":1})"),
                                        "admin", 0)),
            "invalid_definition: form: a member's name has the control character U+001B at "
            "character 2");
  EXPECT_EQ(outcome(decide_publish_dashboard(
                c, "d", json(R"({"name":"看板","widgets":[{"title":"\u007f","report":"csat"}]})"),
                "admin", 0)),
            "invalid_definition: dashboard.widgets[0].title: has the control character U+007F "
            "at character 1" +
                only);
  EXPECT_EQ(
      outcome(
          decide_change_settings(c, json(R"({"time_zone":"UTC","name":"甲\u0008"})"), "admin", 0)),
      "invalid_definition: settings.name: has the control character U+0008 at character 2" + only);
  // A template over two lines, with a tab, is taken.
  EXPECT_EQ(outcome(decide_publish_rule(
                c, "r", json(R"({"name":"两行","form":"service_ticket","trigger":{"type":"created"},
                         "actions":[{"type":"notify","to":{"role":"cs_supervisor"},
                         "channel":"todo","template":"新工单\n\t{{ticket.id}}"}]})"),
                "admin", 0)),
            "accepted");
}

// A relation field links to tickets of the form it names: a form there is, or its own.
TEST(Publishing, ARelationNamesAFormThereIs) {
  Catalog c = testing::reference_catalog();
  auto put = [&](const std::string& target) {
    auto r = decide_publish_form(
        c, "parts",
        json(R"({"name":"备件申请","fields":[{"key":"for","label":"关联工单","type":"relation",
                 "form":)" +
             target + "}]}"),
        "admin", 0);
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  EXPECT_EQ(put(R"("service_ticket")"), "accepted");
  EXPECT_EQ(put(R"("parts")"), "accepted");  // a request that follows up an earlier one
  EXPECT_EQ(put(R"("service_tiket")"), "form.fields[0].form: no form \"service_tiket\"");
  EXPECT_EQ(put("7"), "form.fields[0].form: the id of the form whose tickets the field links to");
}

// An upgrade can move old zone names (PRC, US/Pacific) out of the tz database into
// tzdata-legacy. Publishing one is refused; a calendar, dashboard or print template the log holds
// still loads: the calendar counts in UTC, the others on the company's clock.
TEST(StoredDefinitions, AZoneTheTzDatabaseNoLongerKnowsStillLoads) {
  Catalog catalog = testing::reference_catalog();
  const Value calendar = json(R"({"name":"工作日","time_zone":"Mars/Olympus_Mons",
    "weekly":{"mon":["09:00-18:00"]}})");
  const Value dashboard = json(R"({"name":"看板","time_zone":"Mars/Olympus_Mons",
    "widgets":[{"title":"渠道","report":"by_channel","form":"service_ticket"}]})");
  const Value print = json(R"({"name":"派工单","form":"service_ticket",
    "time_zone":"Mars/Olympus_Mons","sections":[{"type":"fields","fields":["customer_name"]}]})");
  EXPECT_FALSE(decide_publish_calendar(catalog, "mars", calendar, "admin", 0).ok());
  EXPECT_FALSE(decide_publish_dashboard(catalog, "mars", dashboard, "admin", 0).ok());
  EXPECT_FALSE(decide_publish_print_template(catalog, "mars", print, "admin", 0).ok());

  auto stored = [](const char* type, const Value& doc, int form_version) {
    Object data{{"id", Value("mars")}, {"version", Value(1)}};
    if (form_version) data.emplace_back("form_version", Value(form_version));
    data.emplace_back("document", doc);
    return DomainEvent{type, Value(std::move(data)), "admin", 0, std::nullopt};
  };
  ASSERT_TRUE(catalog.apply(stored(event_types::kCalendarPublished, calendar, 0)));
  ASSERT_TRUE(catalog.apply(stored(event_types::kDashboardPublished, dashboard, 0)));
  ASSERT_TRUE(catalog.apply(stored(event_types::kPrintTemplatePublished, print, 1)));
  ASSERT_NE(catalog.calendar("mars"), nullptr);
  EXPECT_EQ(catalog.calendar("mars")->time_zone, "Mars/Olympus_Mons");  // as put
  EXPECT_EQ(catalog.calendar("mars")->zone, find_time_zone("UTC"));
  ASSERT_NE(catalog.dashboard("mars"), nullptr);
  EXPECT_EQ(catalog.dashboard("mars")->zone, nullptr);
  ASSERT_NE(catalog.print_template("mars"), nullptr);
  EXPECT_EQ(catalog.print_template("mars")->zone, nullptr);
}

TEST(Publishing, VersionsAndBreakingChanges) {
  Catalog c = testing::reference_catalog();
  EXPECT_EQ(c.flow("service_flow")->version, 1u);
  // Removing a field the flow branches on would break the flow: refused, naming it.
  Value doc = testing::read_json_file("service_ticket.form.json");
  Object form = doc.as_object();
  Array kept;
  for (const auto& f : form[1].second.as_array()) {
    if (f.string_or("key") != "complexity") kept.push_back(f);
  }
  form[1].second = Value(kept);
  auto r = decide_publish_form(c, "service_ticket", Value(form), "admin", 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("flow service_flow"), std::string::npos) << r.error().message;
  // Bad ids and unknown forms.
  EXPECT_FALSE(decide_publish_form(c, "bad id!", doc, "admin", 0).ok());
  for (const char* dots : {".", ".."}) {  // clients resolve these away in /forms/{id}
    auto r = decide_publish_form(c, dots, doc, "admin", 0);
    ASSERT_FALSE(r.ok()) << dots;
    EXPECT_NE(r.error().message.find("other than \".\" and \"..\""), std::string::npos)
        << r.error().message;
  }
  EXPECT_TRUE(decide_publish_form(c, "v1.2", doc, "admin", 0).ok());
  auto unknown = decide_publish_flow(
      c, "f2", json(R"({"name":"x","form":"nope","nodes":[],"edges":[]})"), "admin", 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().field, "form");
  // Rules are validated against the form, templates included.
  auto rule = decide_publish_rule(
      c, "r", json(R"({"name":"x","form":"service_ticket","trigger":{"type":"created"},
      "actions":[{"type":"notify","to":{"role":"a"},"channel":"sms","template":"{{fields.nope}}"}]})"),
      "admin", 0);
  ASSERT_FALSE(rule.ok());
  EXPECT_NE(rule.error().message.find("{{fields.nope}}"), std::string::npos);
  auto idle = decide_publish_rule(
      c, "r",
      json(
          R"({"name":"x","form":"service_ticket","trigger":{"type":"idle","node":"accept","after":"0s"},
      "actions":[{"type":"close"}]})"),
      "admin", 0);
  ASSERT_FALSE(idle.ok());
  EXPECT_NE(idle.error().message.find("rule.trigger.after"), std::string::npos);
}

TEST(Dashboards, EveryInvalidCaseAndVersions) {
  Catalog c = testing::reference_catalog();
  const DashboardDef* monitor = c.dashboard("service_monitor");
  ASSERT_NE(monitor, nullptr);
  EXPECT_EQ(monitor->name, "售后服务监控看板");
  ASSERT_EQ(monitor->widgets.size(), 7u);
  EXPECT_EQ(monitor->widgets[4].report, "csat");
  EXPECT_EQ((std::pair{monitor->widgets[4].bucket, monitor->widgets[4].days}),
            (std::pair{std::string("week"), int64_t{84}}));
  EXPECT_EQ(monitor->widgets[6].days, 0);  // backlog: now
  EXPECT_EQ(monitor->time_zone, "Asia/Shanghai");
  EXPECT_NE(monitor->zone, nullptr);
  auto publish = [&](const std::string& widget) {
    return decide_publish_dashboard(c, "d", json(R"({"name":"看板","widgets":[)" + widget + "]}"),
                                    "admin", 0);
  };
  EXPECT_TRUE(publish(R"({"title":"渠道","report":"by_channel"})").ok());
  EXPECT_EQ(parse_dashboard("d", json(R"({"name":"看板","widgets":[{"title":"渠道",
      "report":"by_channel"}]})"))
                .value()
                .widgets[0]
                .chart,
            "table");  // the default
  struct Case {
    const char* widget;
    const char* message;
  };
  for (const Case& k : std::initializer_list<Case>{
           {R"({"title":"x","report":"nope"})", "widgets[0].report: one of by_channel"},
           {R"({"title":"","report":"csat"})", "widgets[0].title: a non-empty string"},
           {R"({"title":"x","report":"csat","chart":"donut"})", "widgets[0].chart: one of"},
           {R"({"title":"x","report":"csat","bucket":"year"})", "widgets[0].bucket: one of"},
           {R"({"title":"x","report":"csat","days":0})", "widgets[0].days: a whole number"},
           {R"({"title":"x","report":"csat","days":1.5})", "widgets[0].days: a whole number"},
           {R"({"title":"x","report":"csat","days":"30"})", "widgets[0].days: a whole number"},
           {R"({"title":"x","report":"csat","form":"nope"})", "widgets[0].form: no form \"nope\""},
           {R"({"title":"x","report":"csat","form":3})", "widgets[0].form: must be a string"},
           {R"({"title":"x","report":"backlog","days":7})", "widgets[0].days: the backlog counts"},
           {R"({"title":"x","report":"backlog","bucket":"day"})", "widgets[0].bucket: the backlog"},
           {R"({"title":"x","report":"csat","field":"channel"})",
            "widgets[0].field: only a by_problem_type widget"},
           {R"({"title":"x","report":"by_problem_type","field":"description"})",
            "widgets[0].field: \"description\" is not a select field of any form"},
           {R"({"title":"x","report":"csat","colour":"red"})",
            "widgets[0].colour: unknown property"},
           {R"("csat")", "widgets[0]: must be a JSON object"}}) {
    auto r = publish(k.widget);
    ASSERT_FALSE(r.ok()) << k.widget;
    EXPECT_NE(r.error().message.find(k.message), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(
      decide_publish_dashboard(c, "d", json(R"({"name":"看板","widgets":[]})"), "a", 0).ok());
  // Days are UTC's unless the dashboard names its zone, which must be one the tz database has.
  const std::string widget = R"("widgets":[{"title":"x","report":"csat"}])";
  auto utc = parse_dashboard("d", json(R"({"name":"看板",)" + widget + "}"));
  ASSERT_TRUE(utc.ok());
  EXPECT_EQ(std::pair(utc.value().time_zone, utc.value().zone),
            std::pair(std::string("UTC"), static_cast<const date::time_zone*>(nullptr)));
  for (const char* zone : {R"("Mars/Olympus")", R"("")", "8"}) {
    auto r = decide_publish_dashboard(
        c, "d", json(R"({"name":"看板","time_zone":)" + std::string(zone) + "," + widget + "}"),
        "admin", 0);
    ASSERT_FALSE(r.ok()) << zone;
    EXPECT_NE(r.error().message.find("dashboard.time_zone: "), std::string::npos)
        << r.error().message;
  }
  EXPECT_FALSE(decide_publish_dashboard(
                   c, "d", json(R"({"widgets":[{"title":"x","report":"csat"}]})"), "a", 0)
                   .ok());
  // A new version only when the document changes, as for every definition.
  const Value doc = testing::read_json_file("service_monitor.dashboard.json");
  auto same = decide_publish_dashboard(c, "service_monitor", doc, "admin", 0);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same.value());
  Object changed = doc.as_object();
  changed[0].second = Value("看板 v2");
  auto next = decide_publish_dashboard(c, "service_monitor", Value(changed), "admin", 0);
  ASSERT_TRUE(next.ok() && next.value());
  ASSERT_TRUE(c.apply(*next.value()));
  EXPECT_EQ(c.dashboard("service_monitor")->version, 2u);
  EXPECT_EQ(c.dashboard("service_monitor", 1)->name, "售后服务监控看板");
}

// A form version may not take away a select field a dashboard's widget counts by (as it may not
// take a field a print template prints): the widget would answer an error on every screen.
TEST(Dashboards, AFormVersionKeepsTheFieldsWidgetsCountBy) {
  Catalog c = testing::reference_catalog();
  auto publish_form = [&](const std::string& id, const Value& doc) {
    return decide_publish_form(c, id, doc, "admin", 0);
  };
  const Value form = c.form("service_ticket")->document;
  auto with_region = [&](const char* region) {
    Array fields = form["fields"].as_array();
    if (region) fields.push_back(json(region));
    Object doc = form.as_object();
    set_member(doc, "fields", Value(std::move(fields)));
    return Value(std::move(doc));
  };
  const char* select =
      R"({"key":"region","label":"区域","type":"select","options":["华东","华北"]})";
  const char* text = R"({"key":"region","label":"区域","type":"text"})";
  testing::publish(c, publish_form("service_ticket", with_region(select)));
  testing::publish(c, decide_publish_dashboard(c, "ops", json(R"({"name":"区域","widgets":[
      {"title":"全部","report":"by_problem_type","field":"region"},
      {"title":"售后","report":"by_problem_type","form":"service_ticket","field":"region"}]})"),
                                               "admin", 0));
  for (const Value& next : {with_region(nullptr), with_region(text)}) {
    auto r = publish_form("service_ticket", next);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, codes::kInvalidDefinition);
    EXPECT_EQ(r.error().message,
              "this version would break dashboard ops: dashboard.widgets[0].field: \"region\" is "
              "not a select field of any form");
  }
  // Another form counting by region keeps the first widget; the second names this form.
  testing::publish(c, publish_form("install", json(std::string(R"({"name":"安装单","fields":[)") +
                                                   select + "]}")));
  auto r = publish_form("service_ticket", with_region(nullptr));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("dashboard.widgets[1].field: \"region\" is not a select field "
                                   "of form service_ticket"),
            std::string::npos)
      << r.error().message;
  testing::publish(c, decide_publish_dashboard(c, "ops", json(R"({"name":"区域","widgets":[
      {"title":"全部","report":"by_problem_type","field":"region"}]})"),
                                               "admin", 0));
  testing::publish(c, publish_form("service_ticket", with_region(nullptr)));
  EXPECT_EQ(c.form("service_ticket")->field("region"), nullptr);
}

TEST(Values, Utf8RoundTripsAndOrderIsKept) {
  std::string text = R"({"名称":"售后服务工单","z":1,"a":[true,null,"😀"],"嵌套":{"键":"值"}})";
  Value v = json(text);
  EXPECT_EQ(v.to_json(), text);
  Value again = json(v.to_json());
  EXPECT_EQ(again, v);
  std::string err;
  EXPECT_FALSE(parse_json(R"({"a":1,"a":2})", &v, &err));
  EXPECT_FALSE(parse_json("{\"a\":\"\xff\"}", &v, &err));  // invalid UTF-8 is refused on input
}

TEST(Values, RefusalsNameTheirCauseAndLeaveTheValueAsItWas) {
  Value v = json(R"({"kept":true})");
  std::string err;
  EXPECT_FALSE(parse_json(R"({"a":{"b":1,"c":[1,{"b":2,"b":3}]}})", &v, &err));
  EXPECT_EQ(err, "duplicate key \"b\"");
  EXPECT_EQ(v.to_json(), R"({"kept":true})");
  // Input is read to depth 64 (the root at depth 0), what the server wrote to depth 128.
  auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  err.clear();
  EXPECT_FALSE(parse_json(nested(66), &v, &err, kMaxInputJsonDepth));
  EXPECT_EQ(err, "JSON nested too deeply");
  EXPECT_EQ(v.to_json(), R"({"kept":true})");
  EXPECT_FALSE(parse_json(nested(130), &v, &err));
  EXPECT_EQ(err, "JSON nested too deeply");
  Value ok;
  EXPECT_TRUE(parse_json(nested(65), &ok, &err, kMaxInputJsonDepth)) << err;
  EXPECT_TRUE(parse_json(nested(129), &ok, &err)) << err;
  for (const char* text : {R"({"n":1e400})", R"({"n":01})", R"({"n":-})"}) {
    EXPECT_FALSE(parse_json(text, &v, &err));
    EXPECT_EQ(err,
              "malformed JSON: a number is malformed (such as 01, 1. or -) or beyond a double's "
              "range (about ±1.8e308)")
        << text;
  }
  // Nested 64 deep is taken.
  EXPECT_TRUE(parse_json(std::string(64, '[') + std::string(64, ']'), &v, &err)) << err;
  ASSERT_TRUE(parse_json(R"([-7,18446744073709551615,0.5,"",null,false,{}])", &v, &err)) << err;
  const Array& a = v.as_array();
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(a[0].as_number(), -7);
  EXPECT_EQ(a[1].as_number(), 18446744073709551615.0);
  EXPECT_EQ(a[2].as_number(), 0.5);
  EXPECT_TRUE(a[3].is_string());
  EXPECT_TRUE(a[4].is_null());
  EXPECT_TRUE(a[5].is_bool());
  EXPECT_FALSE(a[5].as_bool());
  EXPECT_TRUE(a[6].is_object());
  EXPECT_TRUE(a[6].as_object().empty());
}

}  // namespace
}  // namespace ticketd
