// ticketctl bench seed: fills a log with reference-form tickets decided by the real domain logic
// (submission, node, rules), appended by concurrent producers, so restart, rebuild and memory
// can be measured at millions of events without driving them through HTTP.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "domain/ticket.h"
#include "projections/read_model.h"
#include "projections/snapshots.h"
#include "tools/ticketctl/bench.h"

namespace ticketd::tools {

int bench_seed(const Args& args) {
  std::string error;
  auto tickets = args.number("tickets", 100000, &error);
  auto producers = tickets ? args.number("producers", 16, &error) : std::nullopt;
  if (!tickets || !producers || *producers == 0) {
    std::cerr << "ticketctl: " << error << "\n";
    return 2;
  }
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, false, &log)) return rc;
  // The definitions and users as the server sees them; the tickets are decided against them.
  projections::ReadModel model;
  std::string note;
  projections::restore_snapshot(*log, model, &note);
  if (auto s = projections::replay(*log, model, model.applied_position()); !s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }
  bool ready = model.read([](const projections::ReadModel::View& v) {
    return v.catalog.form("service_ticket") && v.catalog.flow("service_flow") &&
           v.catalog.user("li");
  });
  if (!ready) {
    std::cerr << "ticketctl: no reference application in this log; start ticketd --demo on it "
                 "once first\n";
    return 2;
  }
  const uint64_t first = model.read([](const auto& v) { return v.max_ticket_number; }) + 1;
  std::atomic<uint64_t> next{0}, events{0}, failures{0};
  auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (uint64_t p = 0; p < *producers; ++p) {
    threads.emplace_back([&, p] {
      // Seeded by the first ticket number too: a second seed of the same log must not draw the
      // first one's event ids (the log would take its appends as repeats and add nothing).
      std::mt19937_64 rng((first << 16) + p + 1);
      static const char* kChannels[] = {"电话", "微信", "邮件", "网站", "上门"};
      static const char* kProblems[] = {"产品咨询", "功能故障", "安装指导"};
      for (uint64_t i; (i = next.fetch_add(1)) < *tickets;) {
        std::string id = projections::ticket_id_for(first + i);
        Context ctx;
        ctx.now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
        ctx.new_ticket_id = id;
        ctx.new_portal_code = "seed" + std::to_string(rng());
        ctx.lookups = {[](std::string_view, std::string_view) { return true; },
                       [](std::string_view) { return std::string(); },        // no uploads
                       [](std::string_view) { return std::string("any"); }};  // no relations
        Result<std::vector<DomainEvent>> decided = model.read([&](const auto& v) {
          ctx.actor = Actor{"li", v.catalog.user("li")->roles, false, false, false};
          ctx.catalog = &v.catalog;
          Object fields = {{"customer_name", Value("压测客户" + std::to_string(i))},
                           {"customer_phone", Value("+86 138 0000 0000")},
                           {"channel", Value(kChannels[rng() % 5])},
                           {"problem_type", Value(kProblems[rng() % 3])},
                           {"description", Value("打印机卡纸,需要工程师上门检修。")},
                           {"priority", Value(i % 10 == 0 ? "高" : "中")}};
          return decide(TicketState{}, SubmitTicket{"service_ticket", "service_flow", fields}, ctx);
        });
        if (!decided.ok()) {
          ++failures;
          continue;
        }
        std::vector<storage::NewEvent> batch;
        for (const auto& e : decided.value()) {
          batch.push_back(projections::to_new_event(e, EventId::random_v4(rng(), rng()), "seed"));
        }
        size_t n = batch.size();
        auto r =
            log->append(ticket_stream(id), storage::ExpectedVersion::NoStream(), std::move(batch));
        if (r.status.ok() && !r.duplicate) {
          events += n;
        } else {
          ++failures;  // refused, or taken as a repeat of events already in the log
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "seeded_tickets=%llu\nseeded_events=%llu\nfailures=%llu\nseconds=%.2f\n"
      "log_events=%llu\n",
      static_cast<unsigned long long>(*tickets - failures.load()),
      static_cast<unsigned long long>(events.load()),
      static_cast<unsigned long long>(failures.load()), seconds,
      static_cast<unsigned long long>(log->last_position()));
  return failures ? 1 : 0;
}

}  // namespace ticketd::tools
