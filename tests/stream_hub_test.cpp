// A dashboard topic's window moves at its zone's midnight though no event arrives: the hub looks at
// numbers topics again (refresh_numbers) and sends only what changed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "api/stream_hub.h"
#include "domain/time_format.h"
#include "tests/open_log.h"
#include "tests/reference_fixture.h"
#include "tests/temp_dir.h"

namespace ticketd::api {
namespace {

class CollectingClient : public StreamClient {
 public:
  void send(std::vector<StreamMessage> messages) override {
    std::lock_guard lk(mu_);
    for (auto& m : messages) {
      Value v;
      std::string error;
      ASSERT_TRUE(parse_json(*m, &v, &error)) << error;
      received_.push_back(std::move(v));
    }
  }
  const Actor& actor() const override { return actor_; }

  // Waits (up to 10 s) until `n` messages have come, and returns them.
  std::vector<Value> wait_for(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lk(mu_);
        if (received_.size() >= n) return received_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::lock_guard lk(mu_);
    return received_;
  }

 private:
  Actor actor_{"zhang", {"cs_supervisor"}, false, false, false};
  std::mutex mu_;
  std::vector<Value> received_;
};

// The "to" date of the first widget of a dashboard message, "" for any other message.
std::string window_end(const Value& message) {
  const Value* d = message.find("dashboard");
  return d ? (*d)["widgets"].as_array()[0].string_or("to") : "";
}

// A log holding the reference application's definitions (and `tickets`' events, each on its
// ticket's stream), and the read model applied from it.
class HubFixture : public ::testing::Test {
 protected:
  void load(const std::vector<DomainEvent>& tickets = {}) {
    log = testing::open_log(dir / "log");
    ASSERT_TRUE(log);
    Catalog catalog;
    uint64_t n = 0;
    auto append = [&](const std::string& stream, const DomainEvent& e) {
      ++n;
      auto r = log->append(stream, storage::ExpectedVersion::Any(),
                           {projections::to_new_event(e, EventId::random_v4(n, n), "test")});
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    };
    for (const DomainEvent& e : testing::reference_definitions(catalog))
      append("definitions-" + std::to_string(n + 1), e);
    for (const DomainEvent& e : tickets) append(ticket_stream("T-000042"), e);
    ASSERT_TRUE(log->read_all(0, SIZE_MAX,
                              [&](const storage::RecordedEvent& e) {
                                model.apply(e);
                                return true;
                              })
                    .ok());
  }

  testing::TempDir dir;
  std::unique_ptr<storage::EventLog> log;
  projections::ReadModel model;
};

TEST_F(HubFixture, ADashboardWindowMovesAtItsZonesMidnight) {
  load();

  // Shanghai is UTC+8: 15:59:30Z is 23:59:30 on the 30th there.
  std::atomic<int64_t> now{*parse_rfc3339("2026-11-30T15:59:30Z")};
  StreamHub hub(*log, model, [&] { return now.load(); });
  auto client = std::make_shared<CollectingClient>();
  hub.on_message(client, R"({"op":"subscribe","topic":"dashboard:service_monitor"})");
  hub.on_message(client, R"({"op":"subscribe","topic":"tickets"})");
  auto got = client->wait_for(3);  // subscribed, the numbers, subscribed
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(window_end(got[1]), "2026-11-30");

  // The clock moves to `at` and the hub refreshes: the next message, the `count`th, must be
  // the dashboard ending on `day`. Each step waits for it before the clock moves on, because a
  // refresh reads the clock when the hub's thread gets to it.
  auto refresh_at = [&](const char* at) {
    now = *parse_rfc3339(at);
    hub.refresh_numbers();
  };
  auto expect_window = [&](size_t count, const char* day) {
    auto got = client->wait_for(count);
    ASSERT_EQ(got.size(), count);
    EXPECT_EQ(got.back().string_or("topic"), "dashboard:service_monitor");
    EXPECT_EQ(window_end(got.back()), day);
  };
  hub.refresh_numbers();  // nothing changed: nothing sent
  refresh_at("2026-11-30T16:00:05Z");
  expect_window(4, "2026-12-01");
  refresh_at("2026-11-30T16:15:05Z");  // the same day in Shanghai: nothing sent
  refresh_at("2026-12-01T16:00:05Z");
  expect_window(5, "2026-12-02");
  // The hub delivers in order: had a refresh sent anything else (to the tickets topic, or the
  // same numbers again), it would come before this one.
  refresh_at("2026-12-02T16:00:05Z");
  expect_window(6, "2026-12-03");
  hub.stop();
}

// A report topic asked with tz counts that zone's days, as GET /reports/{name}?tz= does; tz is
// for report topics only, and a zone the tz database has.
TEST_F(HubFixture, AReportTopicCountsAZonesDays) {
  // A ticket rated at 12:00 UTC on 2026-11-25: the 26th already at UTC+14 (Kiritimati).
  Catalog catalog = testing::reference_catalog();
  testing::TicketDriver t(catalog);
  auto ok = [&](const Actor& a, Command c) {
    auto r = t.run(a, std::move(c));
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  ok(t.user("li"), SubmitTicket{"service_ticket", "service_flow", testing::reference_submission()});
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  ok(t.user("li"), TakeAction{"submit", {{"solution", Value("已远程处理")}}, "", ""});
  ok(t.customer(), TakeAction{"confirm", {}, "", ""});
  t.now_us = *parse_rfc3339("2026-11-25T12:00:00Z");
  ok(t.customer(), RateTicket{5, ""});
  load(t.events);
  StreamHub hub(*log, model);
  auto utc = std::make_shared<CollectingClient>(),
       kiritimati = std::make_shared<CollectingClient>();
  hub.on_message(utc, R"({"op":"subscribe","topic":"report:csat"})");
  hub.on_message(kiritimati,
                 R"({"op":"subscribe","topic":"report:csat","tz":"Pacific/Kiritimati"})");
  auto days = [](const Value& message) {
    std::vector<std::string> out;
    for (const Value& row : message["report"]["rows"].as_array())
      out.push_back(row.string_or("bucket"));
    return out;
  };
  auto got = utc->wait_for(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(days(got[1]), std::vector<std::string>{"2026-11-25"}) << got[1].to_json();
  got = kiritimati->wait_for(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(days(got[1]), std::vector<std::string>{"2026-11-26"}) << got[1].to_json();

  for (const char* bad : {R"({"op":"subscribe","topic":"report:csat","tz":"Asia/Beijing"})",
                          R"({"op":"subscribe","topic":"report:csat","tz":8})",
                          R"({"op":"subscribe","topic":"dashboard:service_monitor","tz":"UTC"})"}) {
    const size_t before = utc->wait_for(0).size();
    hub.on_message(utc, bad);
    got = utc->wait_for(before + 1);
    ASSERT_EQ(got.size(), before + 1) << bad;
    EXPECT_EQ(got.back()["error"].string_or("code"), "bad_request") << bad;
  }

  // Without tz, the company's days: when the company names its zone, the topic follows at once.
  model.on_catalog_change([&] { hub.refresh_numbers(); });
  const size_t before = utc->wait_for(0).size();
  auto change = decide_change_settings(
      catalog, testing::json(R"({"time_zone":"Pacific/Kiritimati"})"), "admin", 0);
  ASSERT_TRUE(change.ok() && change.value());
  auto r =
      log->append("setting-company", storage::ExpectedVersion::Any(),
                  {projections::to_new_event(*change.value(), EventId::random_v4(99, 99), "t")});
  ASSERT_TRUE(r.status.ok());
  ASSERT_TRUE(log->read_all(r.last_position - 1, 1,
                            [&](const storage::RecordedEvent& e) {
                              model.apply(e);
                              return true;
                            })
                  .ok());
  got = utc->wait_for(before + 1);
  ASSERT_EQ(got.size(), before + 1);
  EXPECT_EQ(days(got.back()), std::vector<std::string>{"2026-11-26"}) << got.back().to_json();
  model.on_catalog_change(nullptr);
  hub.stop();
}

}  // namespace
}  // namespace ticketd::api
