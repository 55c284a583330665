// Printing: what compose_print() puts on the page for whom, and render_pdf() writing it as a PDF
// that spans pages.
#include <gtest/gtest.h>

#include <algorithm>

#include "api/pdf_renderer.h"
#include "api/print_document.h"
#include "tests/reference_fixture.h"

namespace ticketd::api {
namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

class Printing : public ::testing::Test {
 protected:
  // The complex branch of the reference scenario, to a rated, closed ticket.
  void SetUp() override {
    ok(t.user("li"),
       SubmitTicket{"service_ticket", "service_flow", testing::reference_submission()});
    ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("复杂")}}, "", ""});
    ok(t.user("wang"), TakeAction{"approve", {{"engineer", Value("zhao")}}, "", ""});
    ok(t.user("zhao"),
       TakeAction{"submit", {{"solution", Value("更换搓纸轮后测试正常。")}}, "", ""});
    ok(t.customer(), TakeAction{"confirm", {}, "好了,谢谢", ""});
    ok(t.customer(), RateTicket{4, "上门及时"});
  }

  void ok(const Actor& a, const Command& c) {
    auto r = t.run(a, c);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  std::vector<PrintedEvent> printed() const {
    std::vector<PrintedEvent> out;
    uint64_t position = 100;
    for (const auto& e : t.events) out.push_back({e, ++position, std::string(64, 'a')});
    return out;
  }

  PrintDocument compose(const std::string& layout, const Actor& reader) const {
    const PrintTemplateDef* tpl = catalog.print_template(layout);
    PrintTemplateDef fallback = default_print_template(*catalog.form("service_ticket"));
    return compose_print(printed(), catalog, tpl ? *tpl : fallback, reader,
                         *parse_rfc3339("2026-11-25T09:30:00Z"));
  }

  static const PrintDocument::Section& section(const PrintDocument& d, const std::string& title) {
    auto it = std::find_if(d.sections.begin(), d.sections.end(),
                           [&](const auto& s) { return s.title == title; });
    EXPECT_NE(it, d.sections.end()) << title;
    return *it;
  }

  Catalog catalog = testing::reference_catalog();
  testing::TicketDriver t{catalog};
};

TEST_F(Printing, ServiceReportOfTheReferenceScenario) {
  PrintDocument d = compose("service_report", t.user("zhang"));
  EXPECT_EQ(d.title, "售后服务报告");
  // Times in the template's zone: 08:00Z is 16:00 in Shanghai.
  EXPECT_EQ(d.header, (Rows{{"工单编号", "T-000042"},
                            {"状态", "已关闭"},
                            {"当前节点", "结束"},
                            {"提交人", "李四 (li)"},
                            {"提交时间", "2026-11-25 16:00"},
                            {"关闭时间", "2026-11-25 16:00"}}));
  EXPECT_EQ(section(d, "客户信息").rows, (Rows{{"客户名称", "华东精密机械有限公司"},
                                               {"客户电话", "+86 138 1234 5678"},
                                               {"来源渠道", "电话"}}));
  const Rows& handling = section(d, "处理").rows;
  EXPECT_NE(std::find(handling.begin(), handling.end(),
                      std::make_pair(std::string("工程师"), std::string("赵六 (zhao)"))),
            handling.end());
  EXPECT_EQ(
      section(d, "客户评价").rows,
      (Rows{{"评分", "★★★★☆ 4/5"}, {"评价时间", "2026-11-25 16:00"}, {"评价内容", "上门及时"}}));
  EXPECT_EQ(section(d, "确认签字").labels, (std::vector<std::string>{"服务工程师", "客户"}));

  std::vector<std::string> what;
  for (const auto& r : section(d, "处理记录").process)
    what.push_back(r.node + "|" + r.who + "|" + r.what);
  auto has = [&](const std::string& line) {
    return std::find(what.begin(), what.end(), line) != what.end();
  };
  EXPECT_TRUE(has("开始|李四 (li)|提交工单"));
  EXPECT_TRUE(has("工单受理|张三 (zhang)|通过"));
  EXPECT_TRUE(has("工单受理|张三 (zhang)|修改 处理方式"));
  EXPECT_TRUE(has("工程师处理|赵六 (zhao)|提交处理结果"));
  EXPECT_TRUE(has("客户确认|客户|客户确认 — “好了,谢谢”"));
  EXPECT_TRUE(has("结束|客户|评价 ★★★★☆ 4/5 — “上门及时”"));
  for (const auto& line : what) {
    EXPECT_EQ(line.find("通知"), std::string::npos) << "bookkeeping printed: " << line;
  }
  // Which state of the log the paper shows, and who printed it when.
  EXPECT_NE(d.footer.find("T-000042 · 事件 #" + std::to_string(100 + t.events.size())),
            std::string::npos)
      << d.footer;
  EXPECT_NE(d.footer.find("张三 (zhang) 打印于 2026-11-25 17:30"), std::string::npos) << d.footer;
}

// A layout that names no zone (the default one here) prints on the company's clock, and says so
// at the foot of the page; UTC's while the company names none. The company's name heads the page.
TEST_F(Printing, WithoutAZoneOfItsOwnThePageUsesTheCompanys) {
  auto submitted = [](const PrintDocument& d) {
    for (const auto& [label, value] : d.header) {
      if (label == "提交时间") return value;
    }
    return std::string();
  };
  PrintDocument utc = compose("", t.user("zhang"));
  EXPECT_EQ(submitted(utc), "2026-11-25 08:00");
  EXPECT_EQ(utc.issuer, "");
  EXPECT_NE(utc.footer.find("打印于 2026-11-25 09:30 · 时区 UTC"), std::string::npos) << utc.footer;
  testing::publish(
      catalog, decide_change_settings(
                   catalog, testing::json(R"({"time_zone":"Asia/Shanghai","name":"华东精密售后"})"),
                   "a", 0));
  PrintDocument beijing = compose("", t.user("zhang"));
  EXPECT_EQ(submitted(beijing), "2026-11-25 16:00");
  EXPECT_EQ(beijing.issuer, "华东精密售后");  // the letterhead
  EXPECT_NE(beijing.footer.find("打印于 2026-11-25 17:30 · 时区 Asia/Shanghai"), std::string::npos)
      << beijing.footer;
}

TEST_F(Printing, OnlyWhatTheReaderMayRead) {
  // Put back at the customer's node, the customer may read five fields: no phone, no engineer,
  // and the record does not name the engineer being set either.
  t.state = TicketState{};
  std::vector<DomainEvent> events = t.events;
  t.events.clear();
  for (const auto& e : events) {
    if (e.type == event_types::kCustomerConfirmed) break;
    t.events.push_back(e);
  }
  Actor customer = t.customer();
  PrintDocument d = compose("", customer);
  EXPECT_EQ(d.title, "售后服务工单");  // the form's default layout
  Rows fields = d.sections.at(0).rows;
  std::vector<std::string> labels;
  for (const auto& [label, value] : fields) labels.push_back(label);
  EXPECT_EQ(labels, (std::vector<std::string>{"客户名称", "问题类型", "问题详细描述", "解决方案",
                                              "工单状态"}));
  bool names_solution = false;
  for (const auto& r : d.sections.at(1).process) {
    EXPECT_NE(r.what, "修改 工程师");
    names_solution = names_solution || r.what == "修改 解决方案";
  }
  EXPECT_TRUE(names_solution);
  // An administrator reads every field of the form, unset ones too.
  PrintDocument admin = compose("", t.admin());
  EXPECT_EQ(admin.sections.at(0).rows.size(), catalog.form("service_ticket")->fields.size());
}

TEST_F(Printing, AVeryLongRecordPrintsItsStartAndEnd) {
  const size_t scenario = compose("service_report", t.user("zhang")).sections.at(3).process.size();
  for (int i = 0; i < 1500; ++i) ok(t.user("zhang"), AddComment{"第" + std::to_string(i) + "条"});
  PrintDocument d = compose("service_report", t.user("zhang"));
  const auto& process = d.sections.at(3).process;
  ASSERT_EQ(process.size(), 1001u);
  EXPECT_EQ(process.front().what, "提交工单");
  EXPECT_EQ(process.back().what, "备注: 第1499条");
  const size_t all = scenario + 1500;
  EXPECT_EQ(process[500].what,
            "… 中间 " + std::to_string(all - 1000) + " 条记录未打印(完整记录见工单的事件历史)");
}

TEST_F(Printing, TheCustomersCopyLeavesOutWhatStaffWroteAmongThemselves) {
  ok(t.user("zhang"), AddComment{"客户脾气急,注意沟通"});
  ok(t.user("zhang"), AddComment{"已为您更换搓纸轮", true});  // a reply to the customer
  PrintDocument staff = compose("service_report", t.user("zhang"));
  PrintDocument customer = compose("service_report", t.customer());
  auto lines = [](const PrintDocument& d) {
    std::vector<std::string> out;
    for (const auto& r : d.sections.at(3).process) out.push_back(r.who + "|" + r.what);
    return out;
  };
  auto has = [](const std::vector<std::string>& v, const std::string& line) {
    return std::find(v.begin(), v.end(), line) != v.end();
  };
  EXPECT_TRUE(has(lines(staff), "张三 (zhang)|备注: 客户脾气急,注意沟通"));
  EXPECT_TRUE(has(lines(staff), "客户|客户确认 — “好了,谢谢”"));
  for (const auto& line : lines(customer)) {
    EXPECT_EQ(line.find("脾气"), std::string::npos) << line;
    EXPECT_EQ(line.find("(zhang)"), std::string::npos) << line;  // names, not user ids
  }
  EXPECT_TRUE(has(lines(customer), "张三|通过"));
  EXPECT_TRUE(has(lines(customer), "客户|客户确认 — “好了,谢谢”"));  // the customer's own words
  EXPECT_TRUE(has(lines(staff), "张三 (zhang)|回复: 已为您更换搓纸轮"));
  EXPECT_TRUE(has(lines(customer), "张三|回复: 已为您更换搓纸轮"));
}

// A reopen is part of the story: who took the ticket back, and why where the reader reads it (the
// customer's words are theirs; what staff noted among themselves is not).
TEST_F(Printing, AReopenSaysWhoTookTheTicketBackAndWhy) {
  auto lines = [this](const Actor& reader) {
    const PrintDocument d = compose("service_report", reader);
    std::vector<std::string> out;
    for (const auto& r : d.sections.at(3).process)
      out.push_back(r.node + "|" + r.who + "|" + r.what);
    return out;
  };
  auto has = [](const std::vector<std::string>& v, const std::string& line) {
    return std::find(v.begin(), v.end(), line) != v.end();
  };
  ok(t.customer(), ReopenTicket{"第二天又卡纸了", ""});
  ok(t.user("zhang"), TakeAction{"approve", {}, "", ""});
  ok(t.user("wang"), TakeAction{"approve", {}, "", ""});
  ok(t.user("zhao"), TakeAction{"submit", {{"solution", Value("更换定影组件。")}}, "", ""});
  ok(t.customer(), TakeAction{"confirm", {}, "", ""});
  ok(t.user("li"), ReopenTicket{"回访:客户说仍有异响", ""});
  EXPECT_TRUE(has(lines(t.user("zhang")), "结束|客户|客户重新打开工单 — “第二天又卡纸了”"));
  EXPECT_TRUE(has(lines(t.customer()), "结束|客户|客户重新打开工单 — “第二天又卡纸了”"));
  EXPECT_TRUE(has(lines(t.user("zhang")), "结束|李四 (li)|重新打开工单 — “回访:客户说仍有异响”"));
  EXPECT_TRUE(has(lines(t.customer()), "结束|李四|重新打开工单"));
}

TEST(RenderPdf, LongTextContinuesOnTheNextPage) {
  PrintDocument d;
  d.title = "售后服务报告";
  d.header = {{"工单编号", "T-000001"}};
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "第" + std::to_string(i) + "行:打印机卡纸。\n";
  PrintDocument::Section fields;
  fields.title = "问题";
  fields.rows = {{"问题详细描述", long_text}, {"客户名称", "华东精密机械有限公司"}};
  d.sections.push_back(fields);
  PrintDocument::Section signatures;
  signatures.kind = PrintSection::Kind::kSignatures;
  signatures.labels = {"工程师", "客户"};
  d.sections.push_back(signatures);
  d.footer = "T-000001";

  std::string pdf, error;
  ASSERT_TRUE(render_pdf(d, PdfOptions{}, &pdf, &error)) << error;
  EXPECT_EQ(pdf.rfind("%PDF-", 0), 0u);
  size_t pages = 0;
  for (size_t at = 0; (at = pdf.find("/Type /Page %", at)) != std::string::npos; ++at) ++pages;
  EXPECT_GE(pages, 8u);  // 400 lines at about 50 a page
  EXPECT_NE(pdf.find("/Title <FEFF552E540E670D52A162A5544A>"), std::string::npos);  // UTF-16
}

// A company name, title or section heading of any length (a stored one, from before the limits)
// takes a few lines and ends in "…": the page is the same page as with short ones.
TEST(RenderPdf, LongTitlesAndHeadingsDoNotFillThePage) {
  auto pages_of = [](const std::string& text) {
    PrintDocument d;
    d.issuer = text;
    d.title = text;
    d.header = {{"工单编号", "T-000001"}};
    PrintDocument::Section fields;
    fields.title = text;
    std::string lines;
    for (int i = 0; i < 10; ++i) lines += "第" + std::to_string(i) + "行:打印机卡纸。\n";
    fields.rows = {{"问题详细描述", lines}};
    d.sections.push_back(fields);
    PrintDocument::Section signatures;
    signatures.kind = PrintSection::Kind::kSignatures;
    signatures.labels = {text, "客户"};
    d.sections.push_back(signatures);
    std::string pdf, error;
    EXPECT_TRUE(render_pdf(d, PdfOptions{}, &pdf, &error)) << error;
    size_t pages = 0;
    for (size_t at = 0; (at = pdf.find("/Type /Page %", at)) != std::string::npos; ++at) ++pages;
    return pages;
  };
  std::string long_text;
  for (int i = 0; i < 1000; ++i) long_text += "长";
  EXPECT_EQ(pages_of("售后服务报告"), 1u);
  EXPECT_EQ(pages_of(long_text), 1u);
}

}  // namespace
}  // namespace ticketd::api
