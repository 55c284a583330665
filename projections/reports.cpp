#include "projections/reports.h"

#include <absl/container/inlined_vector.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace ticketd::projections {
namespace {

constexpr int64_t kSlotUs = 900LL * 1000000;  // a quarter of an hour
constexpr int64_t kSlotsPerDay = 96;
// No zone is further from UTC than this (Pacific/Kiritimati is +14:00, Etc/GMT+12 is -12:00).
constexpr int64_t kMostOffsetSlots = 14 * 4;

int64_t slot_of(int64_t us) { return us >= 0 ? us / kSlotUs : (us - kSlotUs + 1) / kSlotUs; }

// The UTC slots that can fall on local days [from, to] in some zone: a superset, filtered by each
// slot's own local day.
std::pair<int64_t, int64_t> slots_around(int64_t from_day, int64_t to_day) {
  int64_t lo = from_day == INT64_MIN ? INT64_MIN : from_day * kSlotsPerDay - kMostOffsetSlots;
  int64_t hi = to_day == INT64_MAX ? INT64_MAX : (to_day + 1) * kSlotsPerDay + kMostOffsetSlots;
  return {lo, hi};
}

Value share(int64_t part, int64_t total) {
  // Four decimals: stable text, and enough for a dashboard.
  double s = total ? static_cast<double>(part) / static_cast<double>(total) : 0.0;
  return Value(static_cast<double>(static_cast<int64_t>(s * 10000 + 0.5)) / 10000);
}

Value rounded(double v) {
  return Value(static_cast<double>(static_cast<int64_t>(v * 100 + 0.5)) / 100);
}

// The q-quantile (nearest rank) of sorted values.
int64_t quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int64_t quarter_hour_floor(int64_t us) { return slot_of(us) * kSlotUs; }
int64_t quarter_hour_ceil(int64_t us) {
  int64_t floor = quarter_hour_floor(us);
  return floor == us ? us : floor + kSlotUs;
}

std::string bucket_label(int64_t day, const std::string& bucket) {
  using namespace std::chrono;
  sys_days d{days{day}};
  if (bucket == "week") d -= (weekday{d} - Monday);  // ISO weeks start on Monday
  year_month_day ymd{d};
  char buf[16];
  if (bucket == "month") {
    std::snprintf(buf, sizeof buf, "%04d-%02u", int(ymd.year()), unsigned(ymd.month()));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()),
                  unsigned(ymd.day()));
  }
  return buf;
}

std::map<std::string, std::string> node_names(const Catalog& catalog) {
  std::map<std::string, std::string> names;
  for (const std::string& id : catalog.flow_ids()) {
    for (const auto& n : catalog.flow(id)->nodes) names.emplace(n.id, n.name);
  }
  return names;
}

bool Reports::known(std::string_view name) { return is_report_name(name); }

Reports::Facts Reports::facts_of(const TicketState& t, const Catalog& catalog) {
  Facts f;
  f.form = intern(t.form_id);
  f.created_slot = slot_of(t.created_at);
  if (const FormDef* form = catalog.form(t.form_id, t.form_version)) {
    // Gathered aside, then kept in one allocation of their number: growing by push_back made
    // three, and kept room for more.
    absl::InlinedVector<std::pair<Name, Name>, 8> selects;
    for (const auto& field : form->fields) {
      if (field.type != FieldType::kSelect) continue;
      const Value& v = t.field(field.key);
      if (v.is_string()) selects.emplace_back(intern(field.key), intern(v.as_string()));
    }
    f.selects.assign(selects.begin(), selects.end());
  }
  if (t.first_response_at) f.first_response_s = (t.first_response_at - t.created_at) / 1000000;
  f.closed = t.closed;
  f.fcr = t.first_contact_resolution();
  f.reopened = t.reopens > 0;
  f.closed_slot = slot_of(t.closed_at);
  if (t.rating) {
    f.rating = *t.rating;
    f.rated_slot = slot_of(t.rated_at);
  }
  for (const auto& rule : t.timers_fired) f.breaches.push_back(intern(rule));  // idle rules fired
  for (const auto& name : t.sla_fired) {  // SLA targets breached, as "sla:<target>"
    auto timer = parse_sla_timer_name(name);
    if (timer && !timer->warning) f.breaches.push_back(intern("sla:" + timer->target));
  }
  f.open = !t.closed;
  f.node = intern(t.node);
  return f;
}

void Reports::apply(const Facts& f, int sign) {
  // A B-tree moves its values when it inserts: each bucket is done with before the next is
  // looked up.
  Bucket& created = bucket(f.form, f.created_slot);
  created.created += sign;
  for (const auto& [field, value] : f.selects) created.selects[{field, value}] += sign;
  if (f.first_response_s >= 0) {
    if (sign > 0) {
      created.first_response.insert(f.first_response_s);
    } else if (auto it = created.first_response.find(f.first_response_s);
               it != created.first_response.end()) {
      created.first_response.erase(it);
    }
  }
  for (Name rule : f.breaches) created.breaches[rule] += sign;
  if (f.closed) {
    Bucket& closed = bucket(f.form, f.closed_slot);
    closed.closed += sign;
    closed.first_contact += f.fcr ? sign : 0;
    closed.reopened += f.reopened ? sign : 0;
  }
  if (f.rating) {
    Bucket& rated = bucket(f.form, f.rated_slot);
    rated.rated += sign;
    rated.rating_sum += sign * f.rating;
  }
  if (f.open) open_[f.form][f.node] += sign;
}

void Reports::update(Ticket ticket, const TicketState& t, const Catalog& catalog) {
  Facts next = facts_of(t, catalog);
  auto [it, fresh] = facts_.try_emplace(ticket);
  if (!fresh) {
    if (it->second == next) return;  // most events move no figure
    apply(it->second, -1);
  }
  apply(next, +1);
  it->second = std::move(next);
}

void Reports::add(Ticket ticket, Facts facts) {
  apply(facts, +1);
  facts_.insert_or_assign(ticket, std::move(facts));
}

bool Reports::known_bucket(std::string_view bucket) {
  return bucket.empty() || bucket == "day" || bucket == "week" || bucket == "month";
}

std::optional<std::string> Reports::run(const ReportQuery& q, const Catalog& catalog,
                                        const std::map<std::string, std::string>& node_names,
                                        ReportTable* out) const {
  if (!known(q.name)) return "unknown report \"" + q.name + "\"";
  if (!known_bucket(q.bucket)) return "bucket must be day, week or month";
  std::string field = q.name == "by_channel" ? "channel"
                      : q.field.empty()      ? "problem_type"
                                             : q.field;
  if (q.name == "by_problem_type" && !q.field.empty() && !is_select_field(catalog, q.form, q.field))
    return "field \"" + q.field + "\" is not a select field of the form";
  out->time_zone = time_zone_name(q.zone);
  // Sums the buckets of the window, per output bucket label ("" without bucketing).
  std::map<std::string, Bucket> by_label;
  const auto [lo, hi] = slots_around(q.from_day, q.to_day);
  for (const auto& [form, slots] : slots_) {
    if (!q.form.empty() && *form != q.form) continue;
    // The local day of the slots before day_end, and the sum its label collects them in: the
    // zone is asked once a day, not once a slot.
    int64_t day = 0, day_end = INT64_MIN;
    Bucket* sum_of_day = nullptr;
    for (auto it = slots.lower_bound(lo); it != slots.end() && it->first < hi; ++it) {
      if (it->first * kSlotUs < q.from_us) continue;
      if (it->first * kSlotUs >= q.to_us) break;
      if (it->first >= day_end) {
        day = local_day(it->first * kSlotUs, q.zone);
        day_end = slot_of(local_day_start(day + 1, q.zone) + kSlotUs - 1);
        if (day > q.to_day) break;
        sum_of_day = day < q.from_day
                         ? nullptr
                         : &by_label[q.bucket.empty() ? "" : bucket_label(day, q.bucket)];
      }
      if (!sum_of_day) continue;
      Bucket& sum = *sum_of_day;
      const Bucket& b = it->second;
      sum.created += b.created;
      for (const auto& [k, n] : b.selects) sum.selects[k] += n;
      sum.first_response.insert(b.first_response.begin(), b.first_response.end());
      sum.closed += b.closed;
      sum.first_contact += b.first_contact;
      sum.reopened += b.reopened;
      sum.rated += b.rated;
      sum.rating_sum += b.rating_sum;
      for (const auto& [k, n] : b.breaches) sum.breaches[k] += n;
    }
  }
  bool bucketed = !q.bucket.empty();
  auto lead = [&](const std::vector<std::string>& cols) {
    out->columns = bucketed ? std::vector<std::string>{"bucket"} : std::vector<std::string>{};
    out->columns.insert(out->columns.end(), cols.begin(), cols.end());
  };
  auto row = [&](const std::string& label, std::vector<Value> cells) {
    if (bucketed) cells.insert(cells.begin(), Value(label));
    out->rows.push_back(std::move(cells));
  };

  if (q.name == "by_channel" || q.name == "by_problem_type") {
    lead({"key", "count", "share"});
    int64_t total = 0;
    for (const auto& [label, b] : by_label) {
      int64_t in_bucket = 0;
      for (const auto& [k, n] : b.selects) in_bucket += *k.first == field ? n : 0;
      total += in_bucket;
      std::vector<std::pair<int64_t, std::string>> keys;
      for (const auto& [k, n] : b.selects) {
        if (*k.first == field && n > 0) keys.emplace_back(-n, *k.second);
      }
      std::sort(keys.begin(), keys.end());  // most first, then by value
      for (const auto& [neg, key] : keys)
        row(label, {Value(key), Value(-neg), share(-neg, in_bucket)});
    }
    out->totals = {{"total", Value(total)}};
  } else if (q.name == "first_response") {
    std::vector<int64_t> all;
    lead({"count", "avg_seconds", "p50_seconds", "p90_seconds"});
    for (const auto& [label, b] : by_label) {
      std::vector<int64_t> v(b.first_response.begin(), b.first_response.end());
      all.insert(all.end(), v.begin(), v.end());
      if (!bucketed || v.empty()) continue;
      double sum = 0;
      for (int64_t s : v) sum += static_cast<double>(s);
      row(label,
          {Value(static_cast<int64_t>(v.size())), rounded(sum / static_cast<double>(v.size())),
           Value(quantile(v, 0.5)), Value(quantile(v, 0.9))});
    }
    std::sort(all.begin(), all.end());
    double sum = 0;
    for (int64_t s : all) sum += static_cast<double>(s);
    out->totals = {
        {"count", Value(static_cast<int64_t>(all.size()))},
        {"avg_seconds", rounded(all.empty() ? 0 : sum / static_cast<double>(all.size()))},
        {"p50_seconds", Value(quantile(all, 0.5))},
        {"p90_seconds", Value(quantile(all, 0.9))}};
    if (!bucketed)
      out->rows.push_back({out->totals[0].second, out->totals[1].second, out->totals[2].second,
                           out->totals[3].second});
  } else if (q.name == "first_contact_resolution") {
    // Beside the tickets resolved at first contact, those whose first close did not hold: a
    // ticket closed, reopened and closed again counts on the day of its last close.
    lead({"closed", "first_contact", "rate", "reopened", "reopen_rate"});
    int64_t closed = 0, fc = 0, reopened = 0;
    for (const auto& [label, b] : by_label) {
      closed += b.closed;
      fc += b.first_contact;
      reopened += b.reopened;
      if (bucketed && b.closed) {
        row(label, {Value(b.closed), Value(b.first_contact), share(b.first_contact, b.closed),
                    Value(b.reopened), share(b.reopened, b.closed)});
      }
    }
    out->totals = {{"closed", Value(closed)},
                   {"first_contact", Value(fc)},
                   {"rate", share(fc, closed)},
                   {"reopened", Value(reopened)},
                   {"reopen_rate", share(reopened, closed)}};
    if (!bucketed) {
      out->rows.push_back(
          {Value(closed), Value(fc), share(fc, closed), Value(reopened), share(reopened, closed)});
    }
  } else if (q.name == "csat") {
    // A CSAT trend is per bucket by nature: a day unless asked otherwise.
    if (!bucketed) {
      ReportQuery daily = q;
      daily.bucket = "day";
      return run(daily, catalog, node_names, out);
    }
    out->columns = {"bucket", "count", "average"};
    int64_t count = 0, sum = 0;
    for (const auto& [label, b] : by_label) {
      count += b.rated;
      sum += b.rating_sum;
      if (b.rated) {
        out->rows.push_back(
            {Value(label), Value(b.rated),
             rounded(static_cast<double>(b.rating_sum) / static_cast<double>(b.rated))});
      }
    }
    out->totals = {
        {"count", Value(count)},
        {"average", rounded(count ? static_cast<double>(sum) / static_cast<double>(count) : 0)}};
  } else if (q.name == "sla_breaches") {
    lead({"key", "count"});
    int64_t total = 0;
    for (const auto& [label, b] : by_label) {
      std::map<std::string_view, int64_t> rules;  // by name
      for (const auto& [rule, n] : b.breaches) {
        if (n > 0) rules.emplace(*rule, n);
      }
      for (const auto& [rule, n] : rules) {
        total += n;
        row(label, {Value(rule), Value(n)});
      }
    }
    out->totals = {{"total", Value(total)}};
  } else {  // backlog: open tickets per node, now (the window does not apply)
    out->columns = {"node", "name", "count"};
    std::map<std::string, int64_t> nodes;
    for (const auto& [form, per_node] : open_) {
      if (!q.form.empty() && *form != q.form) continue;
      for (const auto& [node, n] : per_node) nodes[*node] += n;
    }
    for (const auto& [node, n] : nodes) {
      if (n <= 0) continue;
      auto name = node_names.find(node);
      out->rows.push_back(
          {Value(node), Value(name == node_names.end() ? node : name->second), Value(n)});
    }
  }
  return std::nullopt;
}

void write_report_json(JsonWriter& w, const ReportTable& t) {
  w.begin_object().key("rows").begin_array();
  for (const auto& r : t.rows) {
    w.begin_object();
    for (size_t i = 0; i < r.size() && i < t.columns.size(); ++i) {
      w.key(t.columns[i]);
      r[i].write(w);
    }
    w.end_object();
  }
  w.end_array();
  for (const auto& [k, v] : t.totals) {
    w.key(k);
    v.write(w);
  }
  w.key("time_zone").string(t.time_zone);
  w.end_object();
}

// A spreadsheet runs a cell that starts like a formula (=HYPERLINK(…), +…, -…, @…) as one
// (OWASP's "CSV injection"), and anyone who can type into a ticket writes such cells; a leading '
// makes one text. A signed plain number stays a number.
bool formula_like(std::string_view s) {
  if (s.empty()) return false;
  switch (s[0]) {
    case '=':
    case '@':
    case '\t':
    case '\r':
      return true;
    case '+':
    case '-':
      return s.size() == 1 || s.find_first_not_of("0123456789.", 1) != std::string_view::npos;
    default:
      return false;
  }
}

std::string report_csv(const ReportTable& t) {
  auto cell = [](std::string s) {
    if (formula_like(s)) s.insert(0, 1, '\'');
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  std::string out;
  for (size_t i = 0; i < t.columns.size(); ++i) out += (i ? "," : "") + cell(t.columns[i]);
  out += "\r\n";
  for (const auto& r : t.rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += (i ? "," : "") + cell(r[i].is_string() ? r[i].as_string() : r[i].to_json());
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace ticketd::projections
