// ticketctl: operator tools over a data directory (verify, dump, bench).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "domain/json_writer.h"
#include "server/heap.h"
#include "storage/event_json.h"
#include "storage/event_log.h"
#include "storage/hash_chain.h"
#include "tools/ticketctl/args.h"
#include "tools/ticketctl/bench.h"
#include "tools/ticketctl/views.h"

namespace ticketd::tools {
namespace {

constexpr char kUsage[] = R"(usage: ticketctl <verb> [options]

verbs:
  verify --data-dir D
      Walks the hash chain of the log in D. Prints "ok events=N head=<hex>", or the first
      position where the chain breaks and exits 1.
  dump --data-dir D [--from P] [--stream S]
      Prints events as JSON lines: after position P (default 0, from the beginning), or the
      events of stream S.
  dump-views --data-dir D [--replay]
      Prints every read model (definitions, users, tickets, timers, indexes, attachments) as JSON
      lines, built the way the server builds them: the stored snapshot plus the log after it; with
      --replay, from the log alone (the two must print the same bytes).
  rebuild --data-dir D
      Replays the whole log into fresh read models and stores them as the snapshot (stop the
      server first). dump-views prints the same bytes before and after. Prints events/s and,
      as its baseline, a raw RocksDB scan of the events column family in the same run; and how
      the replay's reading and applying threads shared it (each one's CPU seconds, the batches
      the reader parsed of all).
  replay --data-dir D --ticket T-000001
      The ticket's history as a timeline for auditors: when, position, who, what changed from
      what to what, from which node to which, and each event's hash.
  rebuild-reports --data-dir D [--until P] [--tz ZONE] [--dashboard ID]
      Recomputes every report from zero (up to position P) and prints each as a JSON line
      {"report":name,"result":…}, the same numbers GET /api/v1/reports/<name>[?tz=ZONE] gives
      (days of the IANA zone ZONE; by default the company's, as the log sets it up to P, else
      UTC's); events/s on stderr. With --dashboard, one line instead: that dashboard's members
      as GET /api/v1/dashboards/<ID>/data gives them (its windows end today, in its zone).
  bench append --data-dir D [--producers 64] [--events 200000] [--raw-batch 1000] [--peer]
               [--prefill-wal 1] [--direct-wal 1]
      Appends single-event commands from concurrent producers through the event log, then
      measures the raw RocksDB baseline in the same run, and prints name=value lines. With --peer
      it also runs ../shared/bench/pg-event-store-peer.sh (PostgreSQL) and prints the ratio.
      --prefill-wal 0 writes the log's WAL files as plain appends, to measure what filling them
      ahead gives; --direct-wal 0 writes them through the page cache and fdatasync instead of
      with O_DIRECT | O_DSYNC.
      D must not hold a log already (a fresh directory is used under it).
  bench seed --data-dir D [--tickets 100000] [--producers 16]
      Appends reference-form tickets decided by the domain logic (as li, every tenth 高) to the
      log in D, which needs the reference application (run ticketd --demo on it once, stopped
      before seeding). For restart, rebuild and memory measurements (tools/bench-scale.sh).
  bench pages [--mb 1024]
      What fresh memory costs this machine: MB of new anonymous memory written one byte per 4 KB
      page, faulted in page by page, populated first (MADV_POPULATE_WRITE), and on huge pages
      populated first (MADV_HUGEPAGE), twice: the second gets the huge pages the first freed.
      Prints name=value lines (milliseconds). Why the programs' heap is taken as server/heap.h
      says.
)";

}  // namespace

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Args::parse(int argc, char** argv, int first, const std::vector<std::string>& options,
                        const std::vector<std::string>& flags) {
  auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) return "unexpected argument '" + a + "'";
    std::string name = a.substr(2);
    const bool is_flag = listed(flags, name);
    if (!is_flag && !listed(options, name)) {
      std::string known;
      for (const auto& o : options) known += (known.empty() ? "--" : ", --") + o;
      for (const auto& f : flags) known += (known.empty() ? "--" : ", --") + f;
      return "unknown option --" + name + (known.empty() ? "" : " (this verb takes " + known + ")");
    }
    if (is_flag) {
      values_[name] = "1";
    } else if (i + 1 < argc) {
      values_[name] = argv[++i];
    } else {
      return "option --" + name + " needs a value";
    }
  }
  return "";
}

std::optional<uint64_t> Args::number(const std::string& name, uint64_t fallback,
                                     std::string* error) const {
  if (!has(name)) return fallback;
  std::string v = get(name);
  try {
    size_t used = 0;
    unsigned long long n = std::stoull(v, &used);
    if (used == v.size() && v[0] != '-') return n;
  } catch (...) {
  }
  *error = "--" + name + " takes a whole number, not '" + v + "'";
  return std::nullopt;
}

namespace {

int fail(const std::string& message) {
  std::cerr << "ticketctl: " << message << "\n";
  return 2;
}

int verify(const Args& args) {
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, true, &log)) return rc;
  auto report = log->verify();
  if (!report.ok) {
    std::cout << "broken position=" << report.bad_position << " problem=" << report.problem << "\n";
    return 1;
  }
  std::cout << "ok events=" << report.events << " head=" << storage::to_hex(report.head) << "\n";
  return 0;
}

int dump(const Args& args) {
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, true, &log)) return rc;
  std::string error;
  auto from = args.number("from", 0, &error);
  if (!from) return fail(error);
  auto print = [](const storage::RecordedEvent& e) {
    JsonWriter w;
    storage::write_event_json(w, e);
    std::string line = w.take();
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    return true;
  };
  storage::Status s = args.has("stream")
                          ? log->read_stream(args.get("stream"), *from + 1, SIZE_MAX, print)
                          : log->read_all(*from, SIZE_MAX, print);
  if (!s.ok()) return fail(s.ToString());
  return 0;
}

}  // namespace
}  // namespace ticketd::tools

int main(int argc, char** argv) {
  using namespace ticketd::tools;
  ticketd::server::use_huge_page_heap();
  std::string verb = argc > 1 ? argv[1] : "";
  if (verb.empty() || verb == "help" || verb == "--help" || verb == "-h") {
    std::cout << kUsage;
    return verb.empty() ? 2 : 0;
  }
  Args args;
  int first = 2;
  const std::string what = verb == "bench" && argc > 2 ? argv[2] : "";  // bench's own verb
  if (verb == "bench") {
    if (what != "append" && what != "seed" && what != "pages") {
      return fail("bench needs 'append', 'seed' or 'pages'\n" + std::string(kUsage));
    }
    first = 3;
  }
  // Each verb's options, as kUsage lists them.
  struct Accepted {
    std::vector<std::string> options, flags;
  };
  const std::map<std::string, Accepted> kAccepted = {
      {"verify", {{"data-dir"}, {}}},
      {"dump", {{"data-dir", "from", "stream"}, {}}},
      {"dump-views", {{"data-dir"}, {"replay"}}},
      {"rebuild", {{"data-dir"}, {}}},
      {"replay", {{"data-dir", "ticket"}, {}}},
      {"rebuild-reports", {{"data-dir", "until", "tz", "dashboard"}, {}}},
      {"bench append",
       {{"data-dir", "producers", "events", "raw-batch", "prefill-wal", "direct-wal"}, {"peer"}}},
      {"bench seed", {{"data-dir", "tickets", "producers"}, {}}},
      {"bench pages", {{"mb"}, {}}}};
  auto accepted = kAccepted.find(what.empty() ? verb : verb + " " + what);
  if (accepted == kAccepted.end()) return fail("unknown verb '" + verb + "'\n" + kUsage);
  if (std::string e =
          args.parse(argc, argv, first, accepted->second.options, accepted->second.flags);
      !e.empty())
    return fail(e);
  if (verb == "verify") return verify(args);
  if (verb == "dump") return dump(args);
  if (verb == "bench") {
    if (what == "seed") return bench_seed(args);
    if (what == "pages") return bench_pages(args);
    return bench_append(args);
  }
  if (verb == "dump-views") return dump_views(args);
  if (verb == "rebuild") return rebuild(args);
  if (verb == "rebuild-reports") return rebuild_reports(args);
  if (verb == "replay") return replay_ticket(args);
  return fail("unknown verb '" + verb + "'\n" + kUsage);
}
