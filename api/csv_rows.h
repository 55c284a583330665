#pragma once
// A spreadsheet saved as text (RFC 4180 CSV, or tab-separated) into rows of UTF-8 cells, through
// glibc's iconv and libcsv.
#include <string>
#include <string_view>
#include <vector>

namespace ticketd::api {

struct CsvTable {
  std::vector<std::vector<std::string>> rows;
  // What the bytes were read as: "UTF-8", "GB18030" or "UTF-16", or the charset named.
  std::string encoding;
};

// Excel on a Chinese Windows saves "CSV" in GBK (code page 936), and "Unicode text" as UTF-16
// with a byte-order mark and tabs between cells; LibreOffice and Excel's "CSV UTF-8" save UTF-8.
// `charset` is the Content-Type's (`text/csv; charset=gbk`), "" when none is named: the bytes
// are then UTF-8 when they are well-formed UTF-8 (a byte-order mark skipped), UTF-16 after its
// byte-order mark, else GB18030 (GBK's superset). Cells are separated by tabs when the first
// line has a tab and no comma, else by commas. Blank lines are dropped. False with `error`
// saying what is wrong and where: bytes of no encoding tried, an unterminated quote or a quote
// inside a cell.
bool parse_csv_rows(std::string_view bytes, std::string_view charset, CsvTable* out,
                    std::string* error);

}  // namespace ticketd::api
