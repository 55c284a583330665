// Reports and ticket exports as CSV: RFC 4180 quoting, and no cell a spreadsheet would run.
#include <gtest/gtest.h>

#include "projections/reports.h"

namespace ticketd::projections {
namespace {

std::string one_cell(const std::string& text) {
  ReportTable t;
  t.columns = {"c"};
  t.rows = {{Value(text)}};
  std::string csv = report_csv(t);
  return csv.substr(3, csv.size() - 5);  // "c\r\n" before, "\r\n" after
}

TEST(ReportCsv, QuotesWhatCsvNeedsQuoted) {
  EXPECT_EQ(one_cell("华东精密"), "华东精密");
  EXPECT_EQ(one_cell("打印机卡纸,需要上门"), "\"打印机卡纸,需要上门\"");
  EXPECT_EQ(one_cell("说\"急\""), "\"说\"\"急\"\"\"");
  EXPECT_EQ(one_cell("两行\r\n文字"), "\"两行\r\n文字\"");
}

TEST(ReportCsv, CellsThatStartLikeAFormulaAreText) {
  EXPECT_EQ(one_cell("=HYPERLINK(\"http://evil\",\"点我\")"),
            "\"'=HYPERLINK(\"\"http://evil\"\",\"\"点我\"\")\"");
  EXPECT_EQ(one_cell("@SUM(A1:A9)"), "'@SUM(A1:A9)");
  EXPECT_EQ(one_cell("+86 138 1234 5678"), "'+86 138 1234 5678");
  EXPECT_EQ(one_cell("-2+3"), "'-2+3");
  EXPECT_EQ(one_cell("-"), "'-");
  EXPECT_EQ(one_cell("\tx"), "'\tx");
  // Signed plain numbers stay numbers; a formula character later in a cell is harmless.
  EXPECT_EQ(one_cell("-12.5"), "-12.5");
  EXPECT_EQ(one_cell("+3"), "+3");
  EXPECT_EQ(one_cell("a=b"), "a=b");
}

}  // namespace
}  // namespace ticketd::projections
