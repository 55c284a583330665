#pragma once
// Report aggregates (API.md's reports), maintained incrementally: each ticket's report facts are
// recomputed when it changes and applied as a delta to per-(form, quarter-hour) buckets. A query
// sums the buckets of its window, so it costs time slots, not tickets. Quarter-hours of UTC,
// because every zone's offset is a whole number of them (Asia/Kathmandu's +05:45 too): any zone's
// local days are unions of buckets, so one set of buckets answers in every zone. Derived from
// ticket states alone, so the same log gives the same numbers live, after a snapshot restore, and
// after a rebuild.
#include <absl/container/btree_map.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/node_hash_map.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "domain/catalog.h"
#include "domain/json_writer.h"
#include "domain/ticket.h"
#include "domain/time_format.h"

namespace ticketd::projections {

// Reports count in quarter hours of UTC: the start of the one `us` falls in. A window given as
// instants takes the whole quarter hours its ends fall in, and says so.
int64_t quarter_hour_floor(int64_t us);
int64_t quarter_hour_ceil(int64_t us);

struct ReportQuery {
  std::string name;   // by_channel, by_problem_type, first_response, first_contact_resolution,
                      // csat, sla_breaches, backlog
  std::string field;  // by_problem_type: any select field (default problem_type)
  std::string form;   // empty: every form
  int64_t from_day = INT64_MIN;  // local days since the epoch, inclusive
  int64_t to_day = INT64_MAX;
  // Within those days, the instants [from_us, to_us) of UTC microseconds, whole quarter hours
  // (see quarter_hour_floor): a window given to the minute rather than by days.
  int64_t from_us = INT64_MIN;
  int64_t to_us = INT64_MAX;
  std::string bucket;  // "", day, week, month
  // Whose days: the window and the day, week and month buckets are this zone's (nullptr: UTC's).
  const date::time_zone* zone = nullptr;
};

// One report as rows of named cells, in order: JSON and CSV are both written from it.
struct ReportTable {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;
  Object totals;  // members beside "rows" in the JSON form (total, count, average, …)
  // Whose days the window and the buckets are: the query's zone, named in the JSON form, so that
  // an answer says which days it counted (a report asked without tz counts the company's).
  std::string time_zone = "UTC";
};

class Reports {
 public:
  Reports() = default;
  // Facts point into this object's string pool: moves keep it, copies would not.
  Reports(Reports&&) = default;
  Reports& operator=(Reports&&) = default;
  Reports(const Reports&) = delete;
  Reports& operator=(const Reports&) = delete;

  // Forms, select fields and options, rule and node ids: a few hundred distinct strings across a
  // million tickets' facts, so each is kept once (in strings_) and facts hold pointers to it.
  // Equal names have equal pointers.
  using Name = const std::string*;
  // A million tickets hold one each: the small members come last, so that there is no padding
  // between them.
  struct Facts {
    Name form = nullptr;
    Name node = nullptr;
    std::vector<std::pair<Name, Name>> selects;  // select field -> value
    std::vector<Name> breaches;                  // idle rules that fired; "sla:<target>" breaches
    int64_t created_slot = 0;                    // quarter-hours since the epoch
    int64_t first_response_s = -1;
    int64_t closed_slot = 0;
    int64_t rated_slot = 0;
    int rating = 0;  // 0: not rated
    bool closed = false;
    bool fcr = false;
    bool reopened = false;  // closed after at least one reopen: the first close did not hold
    bool open = false;

    friend bool operator==(const Facts&, const Facts&) = default;
  };

  // A ticket as the read model keys it (TicketKey in read_model.h): its number for the ids the
  // server makes. Eight bytes where the id as a string took 32 in every ticket's facts.
  using Ticket = uint64_t;

  // The ticket changed (or appeared): replace its facts.
  void update(Ticket ticket, const TicketState& t, const Catalog& catalog);

  // For a restore, whose tickets have no facts yet: add() counts a ticket's facts as facts_of()
  // computed them, with nothing to compare or take back.
  Facts facts_of(const TicketState& t, const Catalog& catalog);
  void add(Ticket ticket, Facts facts);
  void reserve(size_t tickets) { facts_.reserve(tickets); }

  static bool known(std::string_view name);
  // day, week, month, or "" for none.
  static bool known_bucket(std::string_view bucket);
  // Errors (an unknown name or field) come back as a message; the table is filled otherwise.
  std::optional<std::string> run(const ReportQuery& q, const Catalog& catalog,
                                 const std::map<std::string, std::string>& node_names,
                                 ReportTable* out) const;

 private:
  // Counts keyed by interned names, so that applying a ticket's facts compares pointers, not
  // strings; a query orders by the names themselves where the order shows.
  struct Bucket {
    int64_t created = 0;
    absl::flat_hash_map<std::pair<Name, Name>, int64_t> selects;  // (field, value)
    std::multiset<int64_t> first_response;
    int64_t closed = 0, first_contact = 0, reopened = 0;
    int64_t rated = 0, rating_sum = 0;
    absl::flat_hash_map<Name, int64_t> breaches;
  };
  Name intern(const std::string& s) { return &*strings_.insert(s).first; }
  void apply(const Facts& f, int sign);
  Bucket& bucket(Name form, int64_t slot) { return slots_[form][slot]; }

  std::unordered_set<std::string> strings_;
  // Ticket -> facts. Looked up at random once per ticket event: an open-addressing table of
  // pointers to nodes misses the cache less than std::unordered_map's buckets and chains, and
  // moves no facts when it grows.
  absl::node_hash_map<Ticket, Facts> facts_;
  absl::flat_hash_map<Name, absl::btree_map<int64_t, Bucket>> slots_;   // form -> slot -> bucket
  absl::flat_hash_map<Name, absl::flat_hash_map<Name, int64_t>> open_;  // form -> node -> open
};

// Node id -> display name over every flow (for the backlog report).
std::map<std::string, std::string> node_names(const Catalog& catalog);

// "2026-11-25", or the week's Monday, or "2026-11" for a month.
std::string bucket_label(int64_t day, const std::string& bucket);
void write_report_json(JsonWriter& w, const ReportTable& t);
// Whether a spreadsheet would run this cell as a formula (=…, @…, +/- but for a signed number).
bool formula_like(std::string_view cell);
// RFC 4180 CSV (CRLF, quotes doubled); a text cell that is formula_like() starts with ' instead.
std::string report_csv(const ReportTable& t);

}  // namespace ticketd::projections
