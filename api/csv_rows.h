#pragma once
// CSV text (RFC 4180, as spreadsheets save it) into rows of cells, through libcsv.
#include <string>
#include <string_view>
#include <vector>

namespace ticketd::api {

// Rows of cells, a UTF-8 byte-order mark at the start skipped, blank lines dropped; false with
// `error` saying where when the text is not CSV (an unterminated quote, a quote inside a cell).
bool parse_csv_rows(std::string_view text, std::vector<std::vector<std::string>>* rows,
                    std::string* error);

}  // namespace ticketd::api
