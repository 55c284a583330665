// Spreadsheets' CSV into rows (libcsv underneath): what Excel and LibreOffice save.
#include "api/csv_rows.h"

#include <gtest/gtest.h>

namespace ticketd::api {
namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows parsed(std::string_view text, std::string_view charset = "",
            std::string_view encoding = "UTF-8") {
  CsvTable table;
  std::string error;
  EXPECT_TRUE(parse_csv_rows(text, charset, &table, &error)) << error;
  EXPECT_EQ(table.encoding, encoding);
  return table.rows;
}

TEST(CsvRows, ReadsWhatSpreadsheetsSave) {
  EXPECT_EQ(parsed("\xEF\xBB\xBF客户名称,描述\r\n华东,\"卡纸,需要\"\"上门\"\"\"\r\n"),
            (Rows{{"客户名称", "描述"}, {"华东", "卡纸,需要\"上门\""}}));
  EXPECT_EQ(parsed("a,b\n\"两\n行\",\n\n"), (Rows{{"a", "b"}, {"两\n行", ""}}));
  EXPECT_EQ(parsed("a\nlast row without a newline"), (Rows{{"a"}, {"last row without a newline"}}));
}

// 客户名称,描述 / 华东,卡纸 as Excel on a Chinese Windows saves "CSV": GBK.
constexpr char kGbk[] =
    "\xBF\xCD\xBB\xA7\xC3\xFB\xB3\xC6,\xC3\xE8\xCA\xF6\r\n\xBB\xAA\xB6\xAB,\xBF\xA8\xD6\xBD\r\n";

TEST(CsvRows, ReadsGbkAndUtf16AsExcelSavesThem) {
  const Rows expected{{"客户名称", "描述"}, {"华东", "卡纸"}};
  EXPECT_EQ(parsed(kGbk, "", "GB18030"), expected);
  EXPECT_EQ(parsed(kGbk, "gbk", "GB18030"), expected);
  // "Unicode text": UTF-16 little-endian after its byte-order mark, tabs between cells.
  const std::u16string utf16 = u"\uFEFF客户名称\t描述\r\n华东\t卡纸\r\n";
  std::string bytes;
  for (char16_t c : utf16) {
    bytes.push_back(static_cast<char>(c & 0xFF));
    bytes.push_back(static_cast<char>(c >> 8));
  }
  EXPECT_EQ(parsed(bytes, "", "UTF-16"), expected);
  // A comma in the first line keeps commas the separator, tabs then being text; with tabs, an
  // empty cell stays one.
  EXPECT_EQ(parsed("a,b\nx\ty,z\n"), (Rows{{"a", "b"}, {"x\ty", "z"}}));
  EXPECT_EQ(parsed("a\tb\tc\n1\t\t3\n"), (Rows{{"a", "b", "c"}, {"1", "", "3"}}));
}

TEST(CsvRows, RefusesWhatIsNotCsv) {
  CsvTable table;
  std::string error;
  EXPECT_FALSE(parse_csv_rows("a,\"unterminated\n", "", &table, &error));
  EXPECT_NE(error.find("not CSV"), std::string::npos) << error;
  table.rows.clear();
  EXPECT_FALSE(parse_csv_rows("a,b\"c\"d\n", "", &table, &error));
  // Bytes of no encoding tried, bytes not in the charset named, a charset iconv does not know.
  EXPECT_FALSE(parse_csv_rows("a,b\n\x80,x\n", "", &table, &error));
  EXPECT_EQ(error,
            "the file is neither UTF-8 nor GBK/GB18030 (byte 5): save it as CSV UTF-8, or "
            "name its charset");
  EXPECT_FALSE(parse_csv_rows(kGbk, "utf-8", &table, &error));
  EXPECT_EQ(error, "the file is not UTF-8, as its charset says");
  EXPECT_FALSE(parse_csv_rows("a\n", "klingon", &table, &error));
  EXPECT_EQ(error, "charset klingon is not one this server reads");
}

}  // namespace
}  // namespace ticketd::api
