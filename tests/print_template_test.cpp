// Print templates: the reference ones, every way a template can be invalid (each error naming
// its path), versions, and a form version that would break a template.
#include <gtest/gtest.h>

#include "domain/print_template.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

using testing::json;

TEST(PrintTemplates, ReferenceTemplatesParse) {
  Catalog c = testing::reference_catalog();
  const PrintTemplateDef* report = c.print_template("service_report");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->title, "售后服务报告");
  EXPECT_EQ(report->time_zone, "Asia/Shanghai");
  ASSERT_EQ(report->sections.size(), 6u);
  EXPECT_EQ(report->sections[0].kind, PrintSection::Kind::kFields);
  EXPECT_EQ(report->sections[0].fields,
            (std::vector<std::string>{"customer_name", "customer_phone", "channel"}));
  EXPECT_EQ(report->sections[3].kind, PrintSection::Kind::kProcess);
  EXPECT_EQ(report->sections[5].labels, (std::vector<std::string>{"服务工程师", "客户"}));
  EXPECT_EQ(c.print_template_ids(), (std::vector<std::string>{"dispatch_sheet", "service_report"}));
}

TEST(PrintTemplates, DefaultLayoutPrintsEveryField) {
  Catalog c = testing::reference_catalog();
  PrintTemplateDef t = default_print_template(*c.form("service_ticket"));
  EXPECT_EQ(t.title, "售后服务工单");
  ASSERT_EQ(t.sections.size(), 3u);
  EXPECT_TRUE(t.sections[0].fields.empty());  // every field, in the form's order
  EXPECT_EQ(t.sections[1].kind, PrintSection::Kind::kProcess);
  EXPECT_EQ(t.sections[2].kind, PrintSection::Kind::kRating);
}

TEST(PrintTemplates, EveryInvalidCaseNamesItsPath) {
  Catalog c = testing::reference_catalog();
  const FormDef& form = *c.form("service_ticket");
  const std::string ok_sections = R"("sections":[{"type":"fields"}])";
  struct Case {
    std::string doc;
    std::string message;  // a part of the error
  } cases[] = {
      {"[1]", "print_template: must be a JSON object"},
      {R"({"name":"x","form":"service_ticket",)" + ok_sections + R"(,"color":"red"})",
       "print_template.color: unknown property"},
      {R"({"form":"service_ticket",)" + ok_sections + "}", "print_template.name"},
      {R"({"name":"x","form":"other",)" + ok_sections + "}", "print_template.form"},
      {R"({"name":"x","form":"service_ticket","title":7,)" + ok_sections + "}",
       "print_template.title: must be a string"},
      {R"({"name":"x","form":"service_ticket","time_zone":"Mars/Olympus",)" + ok_sections + "}",
       "print_template.time_zone: unknown time zone \"Mars/Olympus\""},
      {R"({"name":"x","form":"service_ticket"})", "print_template.sections"},
      {R"({"name":"x","form":"service_ticket","sections":[]})", "print_template.sections"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"chart"}]})",
       "print_template.sections[0].type: one of fields, process, rating, signatures"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"fields","fields":["nope"]}]})",
       "print_template.sections[0].fields: form service_ticket has no field \"nope\""},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"fields","fields":["channel","channel"]}]})",
       "print_template.sections[0].fields: \"channel\" is listed twice"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"fields","fields":[]}]})",
       "print_template.sections[0].fields: at least one field"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"fields","fields":"channel"}]})",
       "print_template.sections[0].fields: an array of strings is required"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"fields"},{"type":"process","fields":["channel"]}]})",
       "print_template.sections[1].fields: only a fields section lists fields"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"signatures"}]})",
       "print_template.sections[0].labels: a signatures section needs its labels"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"signatures","labels":[]}]})",
       "print_template.sections[0].labels: at least one label"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"signatures","labels":[""]}]})",
       "print_template.sections[0].labels: every item must be a non-empty string"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"rating","labels":["a"]}]})",
       "print_template.sections[0].labels: only a signatures section has labels"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"rating","title":1}]})",
       "print_template.sections[0].title: must be a string"},
      {R"({"name":"x","form":"service_ticket","sections":[{"type":"rating","size":1}]})",
       "print_template.sections[0].size: unknown property"},
  };
  for (const auto& tc : cases) {
    auto r = parse_print_template("t", json(tc.doc), form);
    ASSERT_FALSE(r.ok()) << tc.doc;
    EXPECT_EQ(r.error().code, codes::kInvalidDefinition);
    EXPECT_NE(r.error().message.find(tc.message), std::string::npos)
        << r.error().message << " lacks " << tc.message;
  }
}

TEST(PrintTemplates, PublishingVersionsAndFormChangesThatWouldBreakThem) {
  Catalog c = testing::reference_catalog();
  Value doc = json(R"({"name":"标签","form":"service_ticket","title":"工单标签",
                       "sections":[{"type":"fields","fields":["customer_name","created_time"]}]})");
  auto first = decide_publish_print_template(c, "label", doc, "admin", 1);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(first.value().has_value());
  EXPECT_EQ(first.value()->type, event_types::kPrintTemplatePublished);
  ASSERT_TRUE(c.apply(*first.value()));
  EXPECT_EQ(c.print_template("label")->version, 1u);

  auto same = decide_publish_print_template(c, "label", doc, "admin", 2);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same.value().has_value());  // identical: nothing to publish

  auto unknown_form = decide_publish_print_template(
      c, "x", json(R"({"name":"x","form":"nope","sections":[{"type":"process"}]})"), "admin", 3);
  ASSERT_FALSE(unknown_form.ok());
  EXPECT_EQ(unknown_form.error().field, "form");

  // A form version without "created_time" would leave the template printing a field that is
  // gone. (The reference's overdue e-mail says it too: a version of that rule without it first.)
  Value rule = c.rule("accept_overdue")->document;
  Array actions = rule["actions"].as_array();
  actions.pop_back();
  Object quiet = rule.as_object();
  set_member(quiet, "actions", Value(std::move(actions)));
  auto republished = decide_publish_rule(c, "accept_overdue", Value(quiet), "admin", 4);
  ASSERT_TRUE(republished.ok()) << republished.error().message;
  ASSERT_TRUE(republished.value().has_value());
  ASSERT_TRUE(c.apply(*republished.value()));
  Value form = c.form("service_ticket")->document;
  Array kept;
  for (const auto& f : form["fields"].as_array()) {
    if (f.string_or("key") != "created_time") kept.push_back(f);
  }
  Object without = form.as_object();
  set_member(without, "fields", Value(std::move(kept)));
  auto broken = decide_publish_form(c, "service_ticket", Value(without), "admin", 4);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("would break print template label"), std::string::npos)
      << broken.error().message;
}

}  // namespace
}  // namespace ticketd
