// Spreadsheets' CSV into rows (libcsv underneath): what Excel and LibreOffice save.
#include "api/csv_rows.h"

#include <gtest/gtest.h>

namespace ticketd::api {
namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows parsed(std::string_view text) {
  Rows rows;
  std::string error;
  EXPECT_TRUE(parse_csv_rows(text, &rows, &error)) << error;
  return rows;
}

TEST(CsvRows, ReadsWhatSpreadsheetsSave) {
  EXPECT_EQ(parsed("\xEF\xBB\xBF客户名称,描述\r\n华东,\"卡纸,需要\"\"上门\"\"\"\r\n"),
            (Rows{{"客户名称", "描述"}, {"华东", "卡纸,需要\"上门\""}}));
  EXPECT_EQ(parsed("a,b\n\"两\n行\",\n\n"), (Rows{{"a", "b"}, {"两\n行", ""}}));
  EXPECT_EQ(parsed("a\nlast row without a newline"), (Rows{{"a"}, {"last row without a newline"}}));
}

TEST(CsvRows, RefusesWhatIsNotCsv) {
  Rows rows;
  std::string error;
  EXPECT_FALSE(parse_csv_rows("a,\"unterminated\n", &rows, &error));
  EXPECT_NE(error.find("not CSV"), std::string::npos) << error;
  rows.clear();
  EXPECT_FALSE(parse_csv_rows("a,b\"c\"d\n", &rows, &error));
}

}  // namespace
}  // namespace ticketd::api
