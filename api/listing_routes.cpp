// Ticket lists: GET /tickets and /inbox, as JSON pages or CSV exports, with their filters, text
// search and sort.
#include <algorithm>
#include <optional>

#include "api/api.h"
#include "api/call.h"
#include "api/ticket_view.h"
#include "domain/permissions.h"
#include "domain/text.h"
#include "domain/time_format.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

// One word of a list's ?q=, taken apart once for every ticket it is matched against.
struct TextTerm {
  explicit TextTerm(std::string_view q) : search(q) {
    digits =
        !q.empty() && std::all_of(q.begin(), q.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  const std::string& lowered() const { return search.needle(); }  // in small letters

  TextSearch search;    // Latin letters match whatever their case: "acme" finds "Acme Ltd"
  bool digits = false;  // a number: a phone's digits, or a ticket's number
};

// A list's ?q=: its words, as a search box takes them ("华东 卡纸" finds the tickets that hold
// both, wherever each is); spaces around or between them, a Chinese input method's too, are
// none of the text.
struct TextQuery {
  explicit TextQuery(std::string_view q) {
    for (std::string_view word : words(q)) terms.emplace_back(word);
  }
  std::vector<TextTerm> terms;
};

// Whether the digits of `phone`, its spaces, dashes, dots and parentheses passed over, hold
// `digits`: a caller's number as the telephone shows it finds "+86 138-1111 2222".
bool phone_contains(std::string_view phone, std::string_view digits) {
  auto separator = [](char c) { return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'; };
  for (size_t start = 0; start < phone.size(); ++start) {
    if (phone[start] != digits[0]) continue;
    size_t i = start, matched = 0;
    while (i < phone.size() && matched < digits.size()) {
      if (phone[i] == digits[matched]) {
        ++matched;
      } else if (!separator(phone[i]) || matched == 0) {
        break;
      }
      ++i;
    }
    if (matched == digits.size()) return true;
  }
  return false;
}

// Whether the ticket is one the caller looks for with ?q=: the text is in a field they may read
// now (a hidden field's words would otherwise be found by asking), or it names the ticket, as
// "T-000012", "t-000012" or its number "12".
bool term_matches(const TicketState& t, const TextTerm& q, const Catalog& catalog,
                  const Actor& actor) {
  if (t.id.size() == q.lowered().size() && q.search.found_in(t.id)) return true;
  auto number = [](std::string_view digits) {  // "000012" → "12"
    return digits.substr(std::min(digits.find_first_not_of('0'), digits.size()));
  };
  if (q.digits && t.id.starts_with("T-") &&
      number(std::string_view(t.id).substr(2)) == number(q.lowered())) {
    return true;
  }
  // Looked up once a field holds the text: most tickets of a list hold it nowhere.
  const FlowDef* flow = nullptr;
  const FormDef* form = q.digits ? catalog.form(t.form_id, t.form_version) : nullptr;
  for (const auto& [key, v] : t.fields) {
    bool found = false;
    if (v.is_string()) {
      const FieldDef* f = form ? form->field(key) : nullptr;
      found = q.search.found_in(v.as_string()) ||
              (f && f->type == FieldType::kPhone && phone_contains(v.as_string(), q.lowered()));
    } else {
      for (const auto& item : v.as_array()) {  // a multi-select's options
        if (item.is_string() && q.search.found_in(item.as_string())) found = true;
      }
    }
    if (!found) continue;
    if (!flow && !(flow = catalog.flow(t.flow_id, t.flow_version))) return false;
    if (may_read_field(t, *flow, actor, key)) return true;
  }
  return false;
}

bool text_matches(const TicketState& t, const TextQuery& q, const Catalog& catalog,
                  const Actor& actor) {
  return std::all_of(q.terms.begin(), q.terms.end(),
                     [&](const TextTerm& term) { return term_matches(t, term, catalog, actor); });
}

// A scan over a million tickets waits on memory: a ticket's state, then its fields, then their
// text are each fetched only once the one before has arrived. Asked for a few tickets ahead,
// stage by stage, the fetches of several tickets overlap (a search over a million tickets took
// about half as long; BENCHMARKS.md, session 35).
class ScanAhead {
 public:
  struct Item {
    const TicketState* ticket;
    projections::TicketKey key;
  };
  // `fields`: the filters read the tickets' fields; `text`: their text too (a search).
  ScanAhead(bool fields, bool text) : stages_(text ? 3 : fields ? 2 : 1) {}

  // Takes the scan's next ticket, and hands `consider` the one whose memory was asked for in
  // every stage, if any yet.
  template <class Consider>
  void push(Item item, Consider&& consider) {
    prefetch_state(*item.ticket);
    ring_[head_++ % kRing] = item;
    if (stages_ >= 2 && head_ > kDistance) prefetch_fields(*at(head_ - 1 - kDistance).ticket);
    if (stages_ >= 3 && head_ > 2 * kDistance) prefetch_text(*at(head_ - 1 - 2 * kDistance).ticket);
    if (head_ - tail_ > stages_ * kDistance) consider(at(tail_++));
  }
  // Hands `consider` the tickets still held, at the end of a step of the scan.
  template <class Consider>
  void drain(Consider&& consider) {
    while (tail_ < head_) consider(at(tail_++));
  }

 private:
  // Tickets between stages. Further ahead, what is in flight outgrows the L1 cache: 8 was
  // slower than 2 or 4 over a million tickets.
  static constexpr size_t kDistance = 2;
  static constexpr size_t kRing = 8;  // more than 3 * kDistance, a power of two

  const Item& at(size_t i) const { return ring_[i % kRing]; }
  static void prefetch_lines(const void* begin, const void* end) {
    auto line = reinterpret_cast<uintptr_t>(begin) & ~uintptr_t{63};
    for (; line < reinterpret_cast<uintptr_t>(end); line += 64) {
      __builtin_prefetch(reinterpret_cast<const void*>(line));
    }
  }
  // The members the filters read, from the id to the times.
  static void prefetch_state(const TicketState& t) { prefetch_lines(&t, &t.updated_at + 1); }
  static void prefetch_fields(const TicketState& t) {
    prefetch_lines(t.fields.data(), t.fields.data() + t.fields.size());
  }
  static void prefetch_text(const TicketState& t) {
    for (const auto& member : t.fields) {
      if (member.second.is_string()) __builtin_prefetch(member.second.as_string().data());
    }
  }

  size_t stages_;
  Item ring_[kRing];
  size_t head_ = 0;  // items pushed
  size_t tail_ = 0;  // items handed on
};

// Whether the caller asks for a CSV export (Accept: text/csv) rather than JSON.
bool asks_for_csv(const HttpRequest& req) {
  return req.header("accept").find("text/csv") != std::string::npos;
}

// Whether some version of some form (form `form`, unless empty) has a priority field that may hold
// `value`: any value of a field that is not a select, one of the options of one that is.
bool any_form_takes_priority(const Catalog& catalog, const std::string& form,
                             const std::string& value) {
  for (const auto& form_id : catalog.form_ids()) {
    if (!form.empty() && form_id != form) continue;
    for (uint64_t version = 1; version <= catalog.form(form_id)->version; ++version) {
      const FormDef* def = catalog.form(form_id, version);
      const FieldDef* field = def ? def->field("priority") : nullptr;
      if (field && (field->type != FieldType::kSelect ||
                    std::find(field->options.begin(), field->options.end(), value) !=
                        field->options.end())) {
        return true;
      }
    }
  }
  return false;
}

// Whom a listing's ?assignee= names, with their roles (none for a user who is not there).
Actor assignee_named(const View& v, const HttpRequest& q) {
  Actor assignee;
  assignee.id = q.param("assignee");
  if (const User* u = v.catalog.user(assignee.id)) assignee.roles = u->roles;
  return assignee;
}

// The index keys of the open tickets waiting on the user or one of their roles, and with
// `todos` of the tickets holding to-dos for them: their inbox.
std::vector<std::string> waiting_keys(const Actor& a, bool todos) {
  std::vector<std::string> keys = {"user:" + a.id};
  for (const auto& r : a.roles) keys.push_back("role:" + r);
  if (todos) {
    keys.push_back("todo-user:" + a.id);
    for (const auto& r : a.roles) keys.push_back("todo-role:" + r);
  }
  return keys;
}

// The tickets that may hold work no one can do: those waiting on, or holding a to-do for, a
// user who cannot act or a role no one who can holds (each is checked with is_stranded()).
std::vector<const projections::TicketIdSet*> maybe_stranded(const View& v,
                                                            const std::set<std::string>& staffed) {
  return v.sets_waiting_on(
      [&](const AssigneeSpec& a) { return !someone_can_act_as(a, v.catalog, staffed); });
}

projections::TicketIdSet waiting_on(const View& v, const Actor& a, bool todos) {
  projections::TicketIdSet ids;
  for (const std::string& key : waiting_keys(a, todos)) {
    if (auto it = v.index.find(key); it != v.index.end())
      ids.insert(it->second.begin(), it->second.end());
  }
  return ids;
}

// The tickets a listing considers: every one, or the members of the smallest set one of its
// filters names (each filter is still checked on every ticket considered).
struct ListingScope {
  enum class Over { kAll, kIndex, kWaitingOnCaller, kWaitingOnAssignee, kMaybeStranded };
  Over over = Over::kAll;
  std::string index_key;  // kIndex: found again at each step of the scan
  size_t size = 0;        // the most tickets considered
};

// A listing's scope from its filters, read off the sizes of the index sets: cheap enough to
// decide where the listing runs. Filters not valid yet narrow to nothing; the listing refuses them.
ListingScope listing_scope(const View& v, const HttpRequest& q, bool inbox, const Actor& caller) {
  using Over = ListingScope::Over;
  auto size_of = [&](const std::string& key) {
    auto it = v.index.find(key);
    return it == v.index.end() ? size_t{0} : it->second.size();
  };
  auto waiting_count = [&](const Actor& a, bool todos) {  // at least waiting_on()'s count
    size_t n = 0;
    for (const std::string& key : waiting_keys(a, todos)) n += size_of(key);
    return n;
  };
  ListingScope scope{Over::kAll, "", v.tickets.size()};
  auto narrow = [&](Over over, size_t size, std::string key) {
    if (size < scope.size) scope = {over, std::move(key), size};
  };
  auto narrow_to_index = [&](std::string key) { narrow(Over::kIndex, size_of(key), key); };
  if (inbox) narrow(Over::kWaitingOnCaller, waiting_count(caller, true), "");
  if (q.has_param("assignee"))
    narrow(Over::kWaitingOnAssignee, waiting_count(assignee_named(v, q), false), "");
  if (q.has_param("form")) narrow_to_index("form:" + q.param("form"));
  if (q.has_param("node")) narrow_to_index("node:" + q.param("node"));
  if (!q.param("status").empty()) narrow_to_index("state:" + q.param("status"));
  if (q.param("stranded") == "true") {
    size_t n = 0;
    for (const auto* set : maybe_stranded(v, staffed_roles(v.catalog))) n += set->size();
    narrow(Over::kMaybeStranded, n, "");
  }
  if (q.has_param("priority")) narrow_to_index("priority:" + q.param("priority"));
  // A set that holds more than a quarter of the tickets narrows too little to pay for finding
  // each of its members by id: the tickets are scanned instead.
  if (scope.size > v.tickets.size() / 4) scope = {Over::kAll, "", v.tickets.size()};
  return scope;
}

}  // namespace

void Api::answer_listing(const CallPtr& call, bool inbox) {
  // A listing that considers few tickets is answered at once here, on the connection's thread:
  // an agent's inbox of a few tickets took 0.4 s behind one search over a million on the query
  // thread, 1.9 s behind four. Larger ones, and exports, which render up to 10,000 rows, wait
  // their turn there.
  const bool quick = !asks_for_csv(call->req) && model_.read([&](const View& v) {
    return listing_scope(v, call->req, inbox, call->actor).size <= options_.quick_listing;
  });
  metrics_.listing_started(!quick);
  if (quick) return list_tickets(call, inbox);
  run_as_query(call, [this, call, inbox] { list_tickets(call, inbox); });
}

void Api::list_tickets(const CallPtr& call, bool inbox) {
  // Accept: text/csv is an export for a spreadsheet: larger pages, the next cursor in a header.
  const bool csv = asks_for_csv(call->req);
  bool bom = false;
  if (csv && !call->bool_param("bom", &bom)) return;
  const date::time_zone* zone = nullptr;  // the export's times on this clock; RFC 3339 UTC without
  if (!call->zone_param(&zone)) return;
  if (zone && !csv) {
    return call->fail(400, "bad_parameter",
                      "tz sets the times of the CSV export (Accept: text/csv); JSON times are "
                      "RFC 3339 UTC",
                      "tz");
  }
  uint64_t limit = csv ? 10000 : 50, offset = 0;
  if (!call->limit_param(&limit, csv ? 10000 : 500)) return;
  if (call->req.has_param("cursor") && !call->uint_param("cursor", &offset)) return;
  const auto& q = call->req;
  int64_t from = INT64_MIN, to = INT64_MAX;
  for (auto [name, slot] : {std::pair{"created_from", &from}, std::pair{"created_to", &to}}) {
    if (!q.has_param(name)) continue;
    auto t = parse_rfc3339(q.param(name));
    if (!t)
      return call->fail(400, "bad_parameter", std::string(name) + " must be an RFC 3339 time",
                        name);
    *slot = *t;
  }
  // A window turned round is a mistake to say, not an empty list to show.
  if (to < from)
    return call->fail(400, "bad_parameter", "created_to must not be before created_from",
                      "created_to");
  std::string sort = q.has_param("sort") ? q.param("sort") : "created_at";
  static const std::vector<std::string> kSorts = {"created_at", "-created_at", "updated_at",
                                                  "-updated_at", "sla_due"};
  if (std::find(kSorts.begin(), kSorts.end(), sort) == kSorts.end()) {
    return call->fail(400, "bad_parameter",
                      "sort must be created_at, -created_at, updated_at, -updated_at or sla_due",
                      "sort");
  }
  std::string sla_filter = q.param("sla");
  if (!sla_filter.empty() && sla_filter != "breached" && sla_filter != "ok") {
    return call->fail(400, "bad_parameter", "sla must be breached or ok", "sla");
  }
  // ?reopened=true: the tickets whose close did not hold (the report's reopen_rate, ticket by
  // ticket); false: those never reopened.
  std::optional<bool> reopened;
  if (q.has_param("reopened") && !call->bool_param("reopened", &reopened.emplace())) return;
  // ?stranded=true: the tickets holding work no one can do (their users disabled, their roles
  // left without an active member): open ones waiting on no one, for an administrator to
  // transfer, and those holding to-dos for no one, for them to mark done.
  std::optional<bool> stranded;
  if (q.has_param("stranded") && !call->bool_param("stranded", &stranded.emplace())) return;
  std::string status = q.param("status");
  if (!status.empty() && status != "open" && status != "closed") {
    return call->fail(400, "bad_parameter", "status must be open or closed", "status");
  }
  // Forms, nodes (of any flow version: a ticket may sit at one a later version dropped) and
  // users are never removed: one that is not there is misspelt, and its empty list a mistake.
  auto known =
      model_.read([&](const View& v) -> std::optional<std::pair<std::string, std::string>> {
        if (q.has_param("form") && !v.catalog.form(q.param("form")))
          return std::pair{"form", "no form \"" + q.param("form") + "\""};
        if (q.has_param("node") &&
            !form_has_node(v.catalog, q.param("form"), q.param("node"), FlowVersions::kEvery)) {
          return std::pair{"node", "no flow" +
                                       (q.has_param("form") ? " of form " + q.param("form") : "") +
                                       " has a node \"" + q.param("node") + "\""};
        }
        if (q.has_param("priority") &&
            !any_form_takes_priority(v.catalog, q.param("form"), q.param("priority"))) {
          return std::pair{"priority", "no form" +
                                           (q.has_param("form") ? " " + q.param("form") : "") +
                                           " has a priority \"" + q.param("priority") + "\""};
        }
        if (q.has_param("assignee") && !v.catalog.user(q.param("assignee")))
          return std::pair{"assignee", "no user \"" + q.param("assignee") + "\""};
        return std::nullopt;
      });
  if (known) return call->fail(400, "bad_parameter", known->second, known->first);
  // The operands that need the views, read once: a listing may consider a million tickets.
  std::optional<Actor> assignee;
  ListingScope scope;
  projections::TicketIdSet waiting;  // the scope's tickets when it is not an index set
  std::set<std::string> staffed;
  model_.read([&](const View& v) {
    if (q.has_param("assignee")) assignee = assignee_named(v, q);
    scope = listing_scope(v, q, inbox, call->actor);
    if (scope.over == ListingScope::Over::kWaitingOnCaller)
      waiting = waiting_on(v, call->actor, true);
    if (scope.over == ListingScope::Over::kWaitingOnAssignee)
      waiting = waiting_on(v, *assignee, false);
    if (stranded) staffed = staffed_roles(v.catalog);
    if (scope.over == ListingScope::Over::kMaybeStranded) {
      for (const auto* set : maybe_stranded(v, staffed)) waiting.insert(set->begin(), set->end());
    }
  });

  const int64_t now = now_us();
  std::optional<TextQuery> text;
  if (q.has_param("q")) text.emplace(q.param("q"));
  if (text && text->terms.empty()) text.reset();  // q= of spaces alone looks for nothing
  const std::optional<std::string> form =
      q.has_param("form") ? std::optional(q.param("form")) : std::nullopt;
  const std::optional<std::string> node =
      q.has_param("node") ? std::optional(q.param("node")) : std::nullopt;
  const std::optional<Value> priority =
      q.has_param("priority") ? std::optional(Value(q.param("priority"))) : std::nullopt;
  const bool by_due = sort == "sla_due", by_updated = sort.find("updated") != std::string::npos;
  // Each hit with its sort key, computed once, and its place in the scan, which breaks ties.
  struct Hit {
    int64_t key;
    size_t seq;
    projections::TicketKey ticket;
  };
  std::vector<Hit> hits;
  auto consider = [&](const View& v, const TicketState& t, projections::TicketKey ticket) {
    if (inbox && !in_inbox_of(t, call->actor)) return;
    if (form && t.form_id != *form) return;
    if (node && t.node != *node) return;
    if (!status.empty() && t.closed != (status == "closed")) return;
    if (priority && !(t.field("priority") == *priority)) return;
    if (assignee && !is_assignee(t, *assignee)) return;
    if (reopened && (t.reopens > 0) != *reopened) return;
    if (stranded && is_stranded(t, v.catalog, staffed) != *stranded) return;
    if (t.created_at < from || t.created_at > to) return;
    if (text && !text_matches(t, *text, v.catalog, call->actor)) return;
    int64_t key = by_updated ? t.updated_at : t.created_at;
    if (!sla_filter.empty() || by_due) {
      const SlaStanding sla = v.sla_standing(t, now);
      if (!sla_filter.empty() && sla.breached != (sla_filter == "breached")) return;
      if (by_due) key = sla.due_at ? sla.due_at : INT64_MAX;  // none last
    }
    hits.push_back({key, hits.size(), ticket});
  };
  // The scan, in id order, a step of scan_step tickets at a time under the shared lock, which
  // holds back the projection applying events: between steps the lock is given up, and taken
  // again only once a projection waiting for it has had it. A search over a million tickets took
  // 0.3 s in one step, and every submission waited for it (and for ever behind two searches in
  // turn). A ticket changed meanwhile is seen as it was when its step came.
  std::optional<projections::TicketKey> after_key;  // where the last step ended
  std::optional<std::string> after_id;
  for (bool done = false; !done;) {
    done = model_.read([&](const View& v) {
      static const projections::TicketIdSet kNone;
      ScanAhead ahead(text || priority, text.has_value());
      auto considered = [&](const ScanAhead::Item& item) { consider(v, *item.ticket, item.key); };
      if (scope.over != ListingScope::Over::kAll) {
        const projections::TicketIdSet* set = &waiting;
        if (scope.over == ListingScope::Over::kIndex) {
          auto it = v.index.find(scope.index_key);
          set = it == v.index.end() ? &kNone : &it->second;
        }
        auto it = after_key ? set->upper_bound(*after_key) : set->begin();
        for (size_t n = 0; it != set->end() && n < options_.scan_step; ++it, ++n) {
          if (const TicketState* t = v.ticket_by_key(*it)) ahead.push({t, *it}, considered);
        }
        ahead.drain(considered);
        if (it == set->end()) return true;
        after_key = *std::prev(it);
        return false;
      }
      auto it = after_id ? v.tickets.upper_bound(*after_id) : v.tickets.begin();
      for (size_t n = 0; it != v.tickets.end() && n < options_.scan_step; ++it, ++n) {
        ahead.push({it->second.get(), v.ticket_key(it->first)}, considered);
      }
      ahead.drain(considered);
      if (it == v.tickets.end()) return true;
      after_id = std::prev(it)->first;
      return false;
    });
    if (!done) model_.let_writers_in();
  }
  // Only the hits up to the page's end are put in order: a page of 20 from a million hits
  // costs a selection, not a sort of them all.
  const bool desc = sort[0] == '-';
  // (A cursor past the end, however large, is an empty page: no sum may wrap.)
  const uint64_t page_begin = std::min<uint64_t>(offset, hits.size());
  const uint64_t page_end = page_begin + std::min<uint64_t>(limit, hits.size() - page_begin);
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(page_end), hits.end(),
                    [desc](const Hit& a, const Hit& b) {
                      if (a.key != b.key) return desc ? a.key > b.key : a.key < b.key;
                      return a.seq < b.seq;
                    });
  const uint64_t total = hits.size();
  const uint64_t next_cursor = page_end < total ? page_end : 0;  // 0: the last page
  // The page's tickets as they are now (tickets are never removed), read a few at a time like
  // the scan, for the same reason: a CSV page of 10,000 rows held the lock for ~40 ms, a JSON page
  // of 500 tickets 10-25 ms, and submissions waited as long. A ticket rendered costs what a few
  // hundred considered do: 64 a hold at most.
  const uint64_t render_step = std::min<uint64_t>(64, options_.scan_step);
  JsonWriter w;
  TicketTable table(call->actor, zone);
  if (!csv) w.begin_object().key("items").begin_array();
  for (uint64_t i = page_begin; i < page_end;) {
    model_.read([&](const View& v) {
      for (const uint64_t step_end = std::min(i + render_step, page_end); i < step_end; ++i) {
        const TicketState* t = v.ticket_by_key(hits[i].ticket);
        if (!t) continue;
        if (csv)
          table.add(*t, v.catalog, v.sla_standing(*t, now));
        else
          write_ticket_view(w, *t, v.catalog, v.attachments, call->actor, now);
      }
    });
    if (i < page_end) model_.let_writers_in();
  }
  if (csv) {
    HttpResponse r = call->csv(projections::report_csv(std::move(table).finish()), bom);
    r.headers.emplace_back("X-Total-Count", std::to_string(total));
    if (next_cursor != 0) r.headers.emplace_back("X-Next-Cursor", std::to_string(next_cursor));
    return call->respond(std::move(r));
  }
  w.end_array().key("next_cursor");
  if (next_cursor)
    w.string(std::to_string(next_cursor));
  else
    w.null();
  w.key("total").number(total);
  w.end_object();
  call->ok(200, w.take());
}

}  // namespace ticketd::api
