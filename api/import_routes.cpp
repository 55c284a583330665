// Tickets imported from a spreadsheet: what a company that ran its service on spreadsheets brings
// along. Each row is submitted as the caller would submit it (validation, flow, rules, numbers),
// after every row has been checked, so a file with a bad row writes nothing.
#include <strings.h>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

#include "api/api.h"
#include "api/call.h"
#include "api/csv_rows.h"
#include "api/ticket_view.h"
#include "domain/catalog.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

constexpr size_t kMostRows = 10000;
constexpr size_t kMostErrorsListed = 100;

// The export's own columns (TicketTable): a file exported, edited and imported again has
// them, and they say nothing a new ticket can take.
bool is_export_column(const std::string& name) {
  const auto& columns = ticket_table_columns();
  return std::find(columns.begin(), columns.end(), name) != columns.end();
}

// A header names a field by its key or its label, or as the export heads a shared label:
// "label (key)".
const FieldDef* field_for(const FormDef& form, const std::string& header) {
  for (const auto& f : form.fields) {
    if (f.key == header || f.label == header || f.label + " (" + f.key + ")" == header) return &f;
  }
  return nullptr;
}

// The charset parameter of a media type (`text/csv; charset="GBK"`), "" when it names none.
std::string charset_of(std::string_view content_type) {
  for (size_t at = content_type.find(';'); at != std::string_view::npos;
       at = content_type.find(';', at + 1)) {
    std::string_view param = content_type.substr(at + 1);
    param = param.substr(0, param.find(';'));
    while (!param.empty() && param.front() == ' ') param.remove_prefix(1);
    while (!param.empty() && param.back() == ' ') param.remove_suffix(1);
    if (param.size() < 8 || strncasecmp(param.data(), "charset=", 8) != 0) continue;
    param.remove_prefix(8);
    if (param.size() >= 2 && param.front() == '"' && param.back() == '"')
      param = param.substr(1, param.size() - 2);
    return std::string(param);
  }
  return "";
}

// A person cell names a user by id, as the export writes it, or by name, as a spreadsheet kept
// by people does: a name that one active user has is that user.
std::string person_id(const Catalog& catalog, const std::string& cell) {
  if (catalog.user(cell)) return cell;
  std::string found;
  for (const User* u : catalog.users()) {
    if (u->disabled || u->name != cell) continue;
    if (!found.empty()) return cell;  // two people of that name: the submit says who is meant
    found = u->id;
  }
  return found.empty() ? cell : found;
}

// A cell as the field's value, or an error message. The export's ' before a formula-like cell
// is taken off again.
// With `zone`, a date-time cell may be that zone's wall-clock time, as the export with the same
// tz= writes it (or a spreadsheet saves it back).
std::optional<std::string> cell_value(const FieldDef& f, std::string cell, const Catalog& catalog,
                                      const date::time_zone* zone, Value* out) {
  if (cell.starts_with('\'') && projections::formula_like(std::string_view(cell).substr(1))) {
    cell.erase(0, 1);
  }
  switch (f.type) {
    case FieldType::kNumber:
    case FieldType::kRating: {
      char* end = nullptr;
      double n = std::strtod(cell.c_str(), &end);
      if (end == cell.c_str() || *end != '\0') return "\"" + cell + "\" is not a number";
      *out = Value(n);
      return std::nullopt;
    }
    case FieldType::kCheckbox:
      if (cell == "true" || cell == "1" || cell == "是") {
        *out = Value(true);
      } else if (cell == "false" || cell == "0" || cell == "否") {
        *out = Value(false);
      } else {
        return "\"" + cell + "\" is not true or false";
      }
      return std::nullopt;
    case FieldType::kMultiselect: {
      Array items;
      for (size_t from = 0; from <= cell.size();) {
        size_t to = std::min(cell.find(';', from), cell.size());
        std::string item = cell.substr(from, to - from);
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) items.push_back(Value(item));
        from = to + 1;
      }
      *out = Value(std::move(items));
      return std::nullopt;
    }
    case FieldType::kAttachment:
    case FieldType::kImage:
      return "uploads cannot be imported: attach them to the ticket afterwards";
    case FieldType::kPerson:
      *out = Value(person_id(catalog, cell));
      return std::nullopt;
    case FieldType::kDatetime:
      if (zone && !parse_rfc3339(cell)) {
        auto at = parse_local_time(cell, zone);
        if (!at) return "\"" + cell + "\" is not a date and time (2026-12-01 05:20) or RFC 3339";
        cell = format_rfc3339(*at);
      }
      *out = Value(cell);
      return std::nullopt;
    default:
      *out = Value(cell);
      return std::nullopt;
  }
}

struct RowError {
  size_t row;  // 1 = the first row after the header
  DomainError error;
};

void write_row_errors(JsonWriter& w, const std::vector<RowError>& errors) {
  w.key("rows").begin_array();
  for (size_t i = 0; i < errors.size() && i < kMostErrorsListed; ++i) {
    const RowError& e = errors[i];
    w.begin_object().key("row").number(static_cast<uint64_t>(e.row)).key("error").begin_object();
    write_error_members(w, e.error.code, e.error.message, e.error.field);
    w.end_object().end_object();
  }
  w.end_array();
}

// The answer of an import: one entry a row, in row order, once every row's submit has answered.
class ImportResults {
 public:
  ImportResults(CallPtr call, size_t rows, std::string encoding)
      : call_(std::move(call)), encoding_(std::move(encoding)), rows_(rows), left_(rows) {}

  void answered(size_t row, const HttpResponse& r) {
    Value v;
    std::string ignored;
    parse_json(r.body, &v, &ignored);
    std::lock_guard lk(mu_);
    if (r.status == 201) {
      rows_[row - 1] = Object{{"row", Value(static_cast<double>(row))},
                              {"id", Value(v.string_or("id"))},
                              {"portal_code", Value(v.string_or("portal_code"))}};
      ++created_;
    } else {
      rows_[row - 1] = Object{{"row", Value(static_cast<double>(row))}, {"error", v["error"]}};
    }
    if (--left_ > 0) return;
    JsonWriter w;
    w.begin_object().key("created").number(static_cast<uint64_t>(created_));
    w.key("failed").number(static_cast<uint64_t>(rows_.size() - created_));
    w.key("encoding").string(encoding_).key("rows");
    Value(Array(rows_.begin(), rows_.end())).write(w);
    w.end_object();
    // All created: 201. Some failed while written (a full disk, say): 200, and "failed" says how
    // many, each row what became of it.
    call_->ok(created_ == rows_.size() ? 201 : 200, w.take());
  }

 private:
  CallPtr call_;
  const std::string encoding_;  // what the file was read as
  std::mutex mu_;
  std::vector<Value> rows_;
  size_t left_;
  size_t created_ = 0;
};

// Submits the rows a chunk at a time, posting the rest to the connection's executor between
// chunks: deciding 10,000 rows in one go would hold the io thread (and every other connection on
// it) for a third of a second.
class ImportRun : public std::enable_shared_from_this<ImportRun> {
 public:
  using Submit = std::function<void(size_t row, SubmitTicket)>;
  ImportRun(CallPtr call, std::vector<SubmitTicket> rows, Submit submit)
      : call_(std::move(call)), rows_(std::move(rows)), submit_(std::move(submit)) {}

  void next() {
    constexpr size_t kChunk = 500;
    for (size_t end = std::min(next_ + kChunk, rows_.size()); next_ < end; ++next_) {
      submit_(next_ + 1, std::move(rows_[next_]));
    }
    if (next_ == rows_.size()) return;
    if (!call_->req.resume) return next();
    call_->req.resume([self = shared_from_this()] { self->next(); });
  }

 private:
  CallPtr call_;
  std::vector<SubmitTicket> rows_;
  Submit submit_;
  size_t next_ = 0;
};

}  // namespace

void Api::post_import(const CallPtr& call) {
  // flow= may be left out when one flow takes the form, as in POST /tickets.
  const std::string form_id = call->req.param("form");
  std::string flow_id = call->req.param("flow");
  if (form_id.empty()) {
    return call->fail(400, "bad_parameter", "form= names the form the rows are submitted as",
                      "form");
  }
  bool dry_run = false;
  if (!call->bool_param("dry_run", &dry_run)) return;
  const date::time_zone* zone = nullptr;
  if (!call->zone_param(&zone)) return;
  CsvTable csv;
  std::string problem;
  if (!parse_csv_rows(call->req.body, charset_of(call->req.header("content-type")), &csv,
                      &problem)) {
    return call->fail(400, "bad_request", problem);
  }
  const std::vector<std::vector<std::string>>& table = csv.rows;
  if (table.size() < 2) {
    return call->fail(422, codes::kInvalidValue,
                      "the file needs a header row and at least one row");
  }
  if (table.size() - 1 > kMostRows) {
    return call->fail(413, "payload_too_large",
                      "at most " + std::to_string(kMostRows) + " rows a file; split it");
  }

  // Columns to fields, and every row to a submission, checked as its submit will be.
  std::vector<SubmitTicket> submissions;
  std::vector<RowError> errors;
  std::vector<std::string> ignored_columns;
  std::optional<DomainError> refused;  // the file itself
  const std::vector<std::string>& header = table[0];
  std::vector<std::optional<FieldDef>> fields(header.size());  // by column; none: ignored
  model_.read([&](const View& v) {
    const FormDef* form = v.catalog.form(form_id, 0);
    if (!form) {
      refused = DomainError{codes::kNotFound, "no form " + form_id, "form"};
      return 0;
    }
    auto chosen = flow_for_submission(v.catalog, *form, flow_id);
    if (!chosen.ok()) {
      refused = chosen.error();
      return 0;
    }
    const FlowDef* flow = chosen.value();
    flow_id = flow->id;
    const NodeDef& start = flow->start();
    // The first row (1 = the first under the header) with a value in column c; table.size()
    // when there is none.
    auto first_value_in = [&](size_t c) {
      size_t row = 1;
      while (row < table.size() && (c >= table[row].size() || table[row][c].empty())) ++row;
      return row;
    };
    for (size_t c = 0; c < header.size() && !refused; ++c) {
      // A column without a name: spreadsheets save formatted but empty columns this way, which
      // hold nothing to lose; one holding values cannot be told what field it is.
      if (header[c].empty()) {
        if (size_t row = first_value_in(c); row < table.size()) {
          refused = DomainError{
              codes::kUnknownField,
              "column " + std::to_string(c + 1) + " has no name in the header row, and row " +
                  std::to_string(row) + " has a value in it: name its field or remove the column",
              ""};
        }
        continue;
      }
      if (const FieldDef* f = field_for(*form, header[c])) {
        // Two columns for one field (by label and by key, say): which one counts is no guess
        // to make with someone's data.
        for (size_t earlier = 0; earlier < c; ++earlier) {
          if (!fields[earlier] || fields[earlier]->key != f->key) continue;
          refused = DomainError{codes::kInvalidValue,
                                "columns " + std::to_string(earlier + 1) + " (\"" +
                                    header[earlier] + "\") and " + std::to_string(c + 1) + " (\"" +
                                    header[c] + "\") are both field " + f->key + "; keep one",
                                header[c]};
        }
        if (refused) break;
        if (start.can_write(f->key)) {
          fields[c] = *f;
          continue;
        }
        // A field no submission writes (an export's 创建时间, say): an empty column, as in an
        // export kept as a template, holds nothing to lose; any value in it is refused, once
        // for the column rather than for every row.
        const size_t holding = first_value_in(c);
        if (holding == table.size()) {
          ignored_columns.push_back(header[c]);
        } else {
          refused = DomainError{codes::kForbidden,
                                "column \"" + header[c] + "\": field " + f->key +
                                    " is not written at submission (node " + start.id + ", " +
                                    start.name + "), and row " + std::to_string(holding) +
                                    " has a value in it; remove the column",
                                header[c]};
        }
      } else if (is_export_column(header[c])) {
        ignored_columns.push_back(header[c]);
      } else {
        refused = DomainError{codes::kUnknownField,
                              "column \"" + header[c] + "\" is no field of form " + form_id +
                                  " (name a field by its label or key)",
                              header[c]};
      }
    }
    return 0;
  });
  // Rows a chunk at a time: checking holds the read model's shared lock, which holds back
  // applying events, so it is let go between chunks.
  constexpr size_t kChunk = 500;
  for (size_t first = 1; first < table.size() && !refused; first += kChunk) {
    model_.read([&](const View& v) {
      Context ctx = context(call, v);
      ctx.new_ticket_id = "T-IMPORT";
      // Who a picking node would hand a row to does not decide whether the row is valid.
      ctx.last_pick = [](std::string_view) { return std::string(); };
      ctx.open_load = [](std::string_view) { return size_t{0}; };
      for (size_t r = first; r < table.size() && r < first + kChunk; ++r) {
        SubmitTicket cmd{form_id, flow_id, {}};
        std::optional<DomainError> bad;
        for (size_t c = 0; c < table[r].size() && !bad; ++c) {
          if (c >= fields.size()) {
            // Trailing empty cells (a spreadsheet's formatted columns) hold nothing.
            if (!table[r][c].empty()) {
              bad = DomainError{codes::kInvalidValue,
                                "cell " + std::to_string(c + 1) +
                                    " has a value and the header row has no column for it",
                                ""};
            }
          } else if (fields[c] && !table[r][c].empty()) {
            Value value;
            if (auto why = cell_value(*fields[c], table[r][c], v.catalog, zone, &value)) {
              bad = DomainError{codes::kWrongType,
                                fields[c]->label + " (" + fields[c]->key + "): " + *why,
                                fields[c]->key};
            } else {
              cmd.fields.emplace_back(fields[c]->key, std::move(value));
            }
          }
        }
        if (!bad) {
          ctx.new_portal_code = "";
          auto decided = decide(TicketState{}, cmd, ctx);
          if (!decided.ok()) bad = decided.error();
        }
        if (bad) {
          errors.push_back({r, std::move(*bad)});
        } else {
          submissions.push_back(std::move(cmd));
        }
      }
      return 0;
    });
  }
  if (refused) return call->fail(*refused);
  if (!errors.empty()) {
    // Nothing is written while a row is refused: fix the file, then import it whole. API.md's
    // error, with each refused row (the first hundred) beside it.
    JsonWriter w;
    w.begin_object().key("error").begin_object();
    write_error_members(w, codes::kInvalidValue,
                        std::to_string(errors.size()) + " of " + std::to_string(table.size() - 1) +
                            " rows are refused; nothing was imported");
    write_row_errors(w, errors);
    w.end_object().end_object();
    return call->respond(HttpResponse{422, "application/json", w.take(), {}});
  }
  if (dry_run) {
    JsonWriter w;
    w.begin_object().key("dry_run").boolean(true);
    w.key("valid").number(static_cast<uint64_t>(submissions.size()));
    w.key("encoding").string(csv.encoding);
    w.key("ignored_columns").begin_array();
    for (const auto& c : ignored_columns) w.string(c);
    w.end_array().end_object();
    return call->ok(200, w.take());
  }

  // Every row is valid: each is submitted as its own POST /tickets would be, in row order (so
  // ticket numbers follow the rows). With an Idempotency-Key, row N's is "<key>/row-N": the same
  // file imported again makes no second ticket of any row.
  const std::string key = call->req.header("idempotency-key");
  auto results = std::make_shared<ImportResults>(call, submissions.size(), csv.encoding);
  auto run = std::make_shared<ImportRun>(
      call, std::move(submissions), [this, call, key, results](size_t n, SubmitTicket cmd) {
        auto row = std::make_shared<Call>();
        row->req.method = "POST";
        row->req.path = "/api/v1/tickets";
        row->req.request_id = call->req.request_id;
        row->req.resume = call->req.resume;
        if (!key.empty())
          row->req.headers.emplace_back("idempotency-key", key + "/row-" + std::to_string(n));
        row->actor = call->actor;
        row->token_hash = call->token_hash;
        row->client = call->client;
        row->respond = [results, n](HttpResponse r) { results->answered(n, r); };
        run_ticket_command(row, "", std::move(cmd), std::nullopt, 201);
      });
  run->next();
}

}  // namespace ticketd::api
