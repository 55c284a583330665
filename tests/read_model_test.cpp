// The read model applied event by event, in batches of any size, and by the pipelined replay:
// the same log gives the same views (tickets, indexes, timers, reports), whether a ticket's
// events and a definition that moves its timers fall in one batch or in several.
#include "projections/read_model.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <list>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "projections/snapshots.h"
#include "tests/open_log.h"
#include "tests/reference_fixture.h"
#include "tests/temp_dir.h"

namespace ticketd::projections {
namespace {

using testing::read_json_file;

// A ticket's commands, in order: by the simple branch (customer service solves it) or the
// complex one (a reject, a dispatch, a transfer), with comments between.
std::vector<std::pair<std::string, Command>> lifecycle(size_t n) {
  auto action = [](std::string a, Object fields = {}, std::string to = "") {
    return Command{TakeAction{std::move(a), std::move(fields), "", std::move(to)}};
  };
  if (n % 2 == 0) {
    return {{"zhang", action("approve", {{"complexity", Value("简单")}})},
            {"li", Command{AddComment{"已联系客户"}}},
            {"li", action("submit", {{"solution", Value("已远程指导清理进纸辊。")}})},
            {"portal", action("confirm")},
            {"portal", Command{RateTicket{5, "很满意"}}}};
  }
  return {{"zhang", action("approve", {{"complexity", Value("复杂")}})},
          {"wang", action("reject")},
          {"zhang", action("approve")},
          {"wang", action("approve", {{"engineer", Value("zhao")}})},
          {"zhao", Command{AddComment{"明天上门"}}},
          {"zhao", action("transfer", {}, "qian")},
          {"qian", action("submit", {{"solution", Value("更换搓纸轮后测试正常。")}})},
          {"portal", action("confirm")}};
}

// Applies the log's events in (after, through] to `model`, one by one.
void apply_range(const storage::EventLog& log, ReadModel& model, uint64_t after, uint64_t through) {
  auto s = log.read_all(after, through - after, [&](const storage::RecordedEvent& e) {
    model.apply(e);
    return true;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Every ticket's SLA standing as the model answers it (off the outlook kept with its timers where
// that is current) against its clocks counted, at its last event, an hour on, around its deadline
// and a year on. Returns how many tickets had a current outlook kept.
size_t expect_standings_as_counted(const ReadModel& model) {
  return model.read([](const ReadModel::View& v) {
    size_t kept = 0;
    for (const auto& [id, t] : v.tickets) {
      const uint64_t number = ticket_number(id);
      kept += number < v.sla_outlooks.size() && v.sla_outlooks[number].version == t->version;
      const int64_t hour = 3'600'000'000, last = t->updated_at;
      std::vector<int64_t> times = {last, last + hour, last + 365 * 24 * hour};
      if (int64_t due = sla_standing(*t, v.catalog, last).due_at) {
        for (int64_t at : {due - 1, due, due + 1}) times.push_back(at);
      }
      for (int64_t at : times) {
        const SlaStanding read = v.sla_standing(*t, at), counted = sla_standing(*t, v.catalog, at);
        EXPECT_EQ(read.due_at, counted.due_at) << id << " at " << at;
        EXPECT_EQ(read.breached, counted.breached) << id << " at " << at;
      }
    }
    return kept;
  });
}

class ReadModelBatches : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = testing::open_log(dir_.path());
    ASSERT_TRUE(log_);
    // A model kept live as the server keeps its own, taking each committed run as it comes.
    live_subscription_ = log_->subscribe(
        0,
        [this](const storage::RecordedEvent& e) {
          live_values_ += e.payload_value() != nullptr;
          live_batch_.emplace_back(e);
        },
        [this] { live_.apply(std::exchange(live_batch_, {})); });
    for (const auto& e : testing::reference_definitions(catalog_)) append("definitions", {e});
    // Tickets run interleaved, a few dozen open at a time; a third are 高 (SLA-covered). Halfway
    // the SLA policy changes, which moves the timers of the open 高 tickets.
    std::mt19937_64 rng(7);
    struct Running {
      testing::TicketDriver driver;
      std::vector<std::pair<std::string, Command>> steps;
      size_t next = 0;
    };
    std::list<Running> running;  // a driver holds its catalog by reference: not assignable
    size_t submitted = 0;
    bool policy_changed = false;
    constexpr size_t kTickets = 240;
    while (submitted < kTickets || !running.empty()) {
      now_ += 7 * 60 * 1'000'000LL;
      if (submitted == kTickets / 2 && !policy_changed) {
        Value policy = read_json_file("high.sla.json");
        Object doc = policy.as_object();
        for (auto& [k, v] : doc) {
          if (k == "targets")
            v = Value(Object{{"first_response", Value("1h")}, {"resolution", Value("4h")}});
        }
        DomainEvent e =
            decide_publish_sla_policy(catalog_, "high", Value(doc), "admin", now_).value().value();
        ASSERT_TRUE(catalog_.apply(e));
        append("definitions", {e});
        policy_changed = true;
        continue;
      }
      if (submitted < kTickets && (running.size() < 30 || rng() % 3 == 0)) {
        Running r{testing::TicketDriver(catalog_), lifecycle(submitted)};
        r.driver.new_ticket_id = ticket_id_for(submitted + 1);
        Object fields = testing::reference_submission();
        fields.emplace_back("priority", Value(submitted % 3 == 0 ? "高" : "中"));
        run(r.driver, "li", SubmitTicket{"service_ticket", "service_flow", fields});
        running.push_back(std::move(r));
        ++submitted;
        continue;
      }
      auto r = std::next(running.begin(), static_cast<long>(rng() % running.size()));
      run(r->driver, r->steps[r->next].first, r->steps[r->next].second);
      if (++r->next == r->steps.size()) running.erase(r);
    }
  }

  // One command through the domain, as the server would decide it, its events appended.
  void run(testing::TicketDriver& d, const std::string& user, const Command& cmd) {
    d.now_us = now_;
    auto r = d.run(user == "portal" ? d.customer() : d.user(user), cmd);
    ASSERT_TRUE(r.ok()) << d.state.id << " at " << d.state.node << ": " << r.error().message;
    append(ticket_stream(d.state.id), r.value());
  }

  void append(const std::string& stream, const std::vector<DomainEvent>& events) {
    std::vector<storage::NewEvent> batch;
    for (const auto& e : events)
      batch.push_back(to_new_event(e, EventId::random_v4(1, ++ids_), ""));
    auto r = log_->append(stream, storage::ExpectedVersion::Any(), std::move(batch));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }

  // Applies the whole log in batches of the sizes `next_size` gives.
  std::string dump_in_batches(const std::function<size_t()>& next_size) {
    ReadModel model;
    std::vector<ParsedEvent> batch;
    size_t size = next_size();
    auto s = log_->read_all(0, SIZE_MAX, [&](const storage::RecordedEvent& e) {
      batch.emplace_back(e);
      if (batch.size() == size) {
        model.apply(std::exchange(batch, {}));
        size = next_size();
      }
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    model.apply(std::move(batch));
    EXPECT_EQ(model.applied_position(), log_->last_position());
    return model.dump();
  }

  // The model of the log's first `cut` events saved as the snapshot, restored into `restored`
  // without its timers, as a server starts.
  void restore_timers_later(uint64_t cut, ReadModel& restored) {
    ReadModel before;
    apply_range(*log_, before, 0, cut);
    ASSERT_TRUE(save_snapshot(*log_, before).ok());
    std::string note;
    ASSERT_EQ(restore_snapshot(*log_, restored, &note, ReadModel::Timers::kLater), cut) << note;
  }

  // Where the SLA policy changes: the last event of the definitions stream.
  uint64_t last_definition_position() const {
    uint64_t position = 0;
    EXPECT_TRUE(log_->read_all(0, SIZE_MAX,
                               [&](const storage::RecordedEvent& e) {
                                 if (e.stream() == "definitions") position = e.position();
                                 return true;
                               })
                    .ok());
    return position;
  }

  void TearDown() override { live_subscription_.reset(); }

  testing::TempDir dir_;
  std::unique_ptr<storage::EventLog> log_;
  ReadModel live_;
  std::vector<ParsedEvent> live_batch_;
  size_t live_values_ = 0;  // events the live model was given with their payload's value
  std::unique_ptr<storage::Subscription> live_subscription_;
  Catalog catalog_;
  int64_t now_ = 1'764'028'800'000'000;  // 2025-11-25T00:00:00Z, a Tuesday
  uint64_t ids_ = 0;
};

TEST(ToNewEvent, OnlyAnIdDrawnForTheAppendIsMarkedFresh) {
  DomainEvent decided;
  decided.type = "TicketSubmitted";
  storage::NewEvent drawn = to_new_event(decided, EventId::random_v4(7, 7), "c");
  EXPECT_EQ(drawn.id, EventId::random_v4(7, 7));
  EXPECT_TRUE(drawn.fresh_id);
  // A derived id (a timer's firing, a notification's outcome) may be appended again: the log
  // must look it up.
  decided.id = EventId::derived("timer/1");
  storage::NewEvent derived = to_new_event(decided, EventId::random_v4(7, 8), "c");
  EXPECT_EQ(derived.id, EventId::derived("timer/1"));
  EXPECT_FALSE(derived.fresh_id);
}

// The log takes a decided event's payload unchecked (NewEvent::payload_written_by_json_writer):
// it must be JSON whatever the event's data holds, malformed UTF-8 and non-finite numbers too.
TEST(ToNewEvent, APayloadIsValidJsonWhateverTheDataHolds) {
  DomainEvent decided;
  decided.type = "FieldsChanged";
  decided.data = Value(Object{{"\xff\"key\n", Value("\xe5\xae cut off \xc0\xaf")},
                              {"nan", Value(std::nan(""))},
                              {"inf", Value(-1.0 / 0.0)},
                              {"nested", Value(Array{Value("\xed\xa0\x80"), Value(1e300)})}});
  storage::NewEvent n = to_new_event(decided, EventId::random_v4(7, 9), "c");
  EXPECT_TRUE(n.payload_written_by_json_writer);
  Value parsed;
  std::string error;
  ASSERT_TRUE(parse_json(n.payload, &parsed, &error)) << error << " in " << n.payload;
  EXPECT_TRUE(parsed["nan"].is_null());
  EXPECT_EQ(parsed["nested"].as_array().size(), 2u);

  testing::TempDir dir;
  auto log = testing::open_log(dir / "log");
  ASSERT_TRUE(log->append("ticket-T-1", storage::ExpectedVersion::Any(), {n}).status.ok());
  std::string stored;
  ASSERT_TRUE(log->read_at(1,
                           [&](const storage::RecordedEvent& e) {
                             stored = std::string(e.payload());
                             return true;
                           })
                  .ok());
  EXPECT_EQ(stored, n.payload);
}

TEST_F(ReadModelBatches, EveryBatchingGivesTheSameViews) {
  std::string one_by_one = dump_in_batches([] { return 1; });
  std::mt19937_64 rng(11);
  EXPECT_EQ(dump_in_batches([&] { return 1 + rng() % 40; }), one_by_one);
  EXPECT_EQ(dump_in_batches([] { return SIZE_MAX; }), one_by_one);  // the whole log at once

  // replay() parses each of its batches (1,024 events) on whichever of its threads is free: a log
  // of several batches, so that both threads parse some.
  ASSERT_GT(log_->last_position(), 4 * 1024u);
  ReadModel replayed;
  ASSERT_TRUE(replay(*log_, replayed, 0).ok());
  EXPECT_EQ(replayed.dump(), one_by_one);

  // The log exercised what batching defers: indexes of open and closed tickets, pending timers
  // (SLA clocks of the 高 tickets), report facts.
  auto [tickets, closed, open] = replayed.read([](const ReadModel::View& v) {
    auto count = [&](const std::string& key) {
      auto it = v.index.find(key);
      return it == v.index.end() ? size_t{0} : it->second.size();
    };
    return std::make_tuple(v.tickets.size(), count("state:closed"), count("state:open"));
  });
  EXPECT_EQ(tickets, 240u);
  EXPECT_EQ(closed, 240u);
  EXPECT_EQ(open, 0u);
}

TEST_F(ReadModelBatches, ALiveModelHasTheViewsOfAReplay) {
  // Live, the events the model reads the data of come with their payload's value (appended a
  // moment ago by to_new_event), which the model takes instead of parsing the payload; a replay
  // parses every payload. The two must agree.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (live_.applied_position() < log_->last_position() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  live_subscription_.reset();
  ASSERT_EQ(live_.applied_position(), log_->last_position());
  EXPECT_GT(live_values_, 240u);  // at least each ticket's submission
  ReadModel replayed;
  ASSERT_TRUE(replay(*log_, replayed, 0).ok());
  EXPECT_EQ(live_.dump(), replayed.dump());
}

TEST_F(ReadModelBatches, ViewsMidwayMatchBetweenBatchings) {
  // Stopped at every 97th position, one-by-one and batched models agree (open tickets, pending
  // timers and half-moved SLA clocks included).
  ReadModel single, batched;
  std::vector<ParsedEvent> batch;
  size_t compared = 0, open_seen = 0, timers_seen = 0, kept_seen = 0;
  auto s = log_->read_all(0, SIZE_MAX, [&](const storage::RecordedEvent& e) {
    single.apply(e);
    batch.emplace_back(e);
    if (e.position() % 97 == 0) {
      batched.apply(std::exchange(batch, {}));
      EXPECT_EQ(batched.dump(), single.dump()) << "at position " << e.position();
      ++compared;
      open_seen += single.read([](const ReadModel::View& v) {
        auto it = v.index.find("state:open");
        return it == v.index.end() ? 0 : it->second.size();
      });
      timers_seen += single.next_due() != INT64_MAX;
      kept_seen += expect_standings_as_counted(single) + expect_standings_as_counted(batched);
    }
    return true;
  });
  ASSERT_TRUE(s.ok());
  EXPECT_GT(compared, 10u);
  EXPECT_GT(open_seen, 0u);
  EXPECT_GT(timers_seen, 0u);
  EXPECT_GT(kept_seen, 0u);
}

TEST_F(ReadModelBatches, TimersLeftOutOfARestoreAreCompletedExactly) {
  // A server restores its snapshot without the pending timers, serves, applies what comes in
  // (before the completion starts, and while it computes), and completes the timers. Then the
  // model equals one that never left them out: at cuts all along the log, and at one whose
  // events include the SLA policy change (which moves the timers of every open 高 ticket).
  const uint64_t end = log_->last_position(), policy_change = last_definition_position();
  std::vector<uint64_t> cuts = {policy_change - 40, policy_change - 10};
  for (uint64_t p = end / 7; p < end - 60; p += end / 7) cuts.push_back(p);
  size_t with_timers = 0;
  for (uint64_t cut : cuts) {
    SCOPED_TRACE("snapshot at " + std::to_string(cut));
    ReadModel restored;
    ASSERT_NO_FATAL_FAILURE(restore_timers_later(cut, restored));
    const uint64_t started = cut + 30, completed = std::min(end, cut + 60);
    apply_range(*log_, restored, cut, started);
    ASSERT_TRUE(
        restored.complete_schedule([&] { apply_range(*log_, restored, started, completed); }));
    EXPECT_FALSE(restored.complete_schedule());  // once only

    ReadModel reference;
    apply_range(*log_, reference, 0, completed);
    EXPECT_EQ(restored.dump(), reference.dump());
    with_timers += reference.next_due() != INT64_MAX;
    // The completion kept every ticket's outlook, current or not; the standings read as counted.
    EXPECT_GT(expect_standings_as_counted(restored), 0u);

    // The completed schedule goes on as any other.
    apply_range(*log_, restored, completed, end);
    apply_range(*log_, reference, completed, end);
    EXPECT_EQ(restored.dump(), reference.dump());
    expect_standings_as_counted(restored);
  }
  EXPECT_GT(with_timers, 2u);
}

TEST_F(ReadModelBatches, TimersLeftOutOfAReplayAreCompletedExactly) {
  // A start without a usable snapshot replays the log with the timers left out, serves, applies
  // what comes in, and completes the timers: the same views as a model that never left them out.
  const uint64_t end = log_->last_position();
  size_t with_timers = 0;
  for (uint64_t cut : {end / 3, last_definition_position() - 10, end - 60}) {
    SCOPED_TRACE("replayed through " + std::to_string(cut));
    ReadModel replayed;
    replayed.set_timers(ReadModel::Timers::kLater);
    apply_range(*log_, replayed, 0, cut);
    replayed.set_timers(ReadModel::Timers::kNow);
    EXPECT_EQ(replayed.next_due(), INT64_MAX);  // every replayed ticket's timers left out
    const uint64_t started = cut + 30, completed = std::min(end, cut + 60);
    apply_range(*log_, replayed, cut, started);
    ASSERT_TRUE(
        replayed.complete_schedule([&] { apply_range(*log_, replayed, started, completed); }));
    ReadModel reference;
    apply_range(*log_, reference, 0, completed);
    EXPECT_EQ(replayed.dump(), reference.dump());
    with_timers += reference.next_due() != INT64_MAX;
  }
  EXPECT_GT(with_timers, 1u);
  // The same through replay() (to the log's end), after a restore that left them out too.
  ReadModel restored;
  ASSERT_NO_FATAL_FAILURE(restore_timers_later(end / 2, restored));
  ASSERT_TRUE(replay(*log_, restored, end / 2, ReadModel::Timers::kLater).ok());
  ASSERT_TRUE(restored.complete_schedule());
  ReadModel reference;
  ASSERT_TRUE(replay(*log_, reference, 0).ok());
  EXPECT_EQ(restored.dump(), reference.dump());
}

TEST_F(ReadModelBatches, TimersCompletedWhileEventsApplyMatch) {
  // The completion on its own thread while the projection applies events, the policy change
  // among them: whatever the interleaving, the same views.
  const uint64_t end = log_->last_position();
  for (uint64_t cut : {end / 4, last_definition_position() - 40}) {
    SCOPED_TRACE("snapshot at " + std::to_string(cut));
    ReadModel restored;
    ASSERT_NO_FATAL_FAILURE(restore_timers_later(cut, restored));
    std::thread completion([&] { EXPECT_TRUE(restored.complete_schedule()); });
    apply_range(*log_, restored, cut, end);
    completion.join();
    ReadModel reference;
    apply_range(*log_, reference, 0, end);
    EXPECT_EQ(restored.dump(), reference.dump());
    expect_standings_as_counted(restored);
  }
}

// A listing scans in steps and calls let_writers_in() between two: with the lock favouring
// readers, its next step would otherwise start while the projection still waits for a reader
// before it, and two listings in turn could keep the projection out for as long as they run.
TEST_F(ReadModelBatches, AReaderInStepsLetsAWaitingProjectionInFirst) {
  ReadModel model;
  apply_range(*log_, model, 0, 100);
  auto wait_until = [](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return done();
  };
  std::atomic<bool> holding{false}, release{false}, stepped{false};
  std::thread reader([&] {
    model.read([&](const ReadModel::View&) {
      holding = true;
      while (!release) std::this_thread::yield();
      return 0;
    });
  });
  ASSERT_TRUE(wait_until([&] { return holding.load(); }));
  std::thread projection([&] { apply_range(*log_, model, 100, 101); });
  ASSERT_TRUE(wait_until([&] { return model.writer_waiting(); }));
  uint64_t seen = 0;
  std::thread scanner([&] {
    model.let_writers_in();
    seen = model.read([](const ReadModel::View& v) { return v.applied_position; });
    stepped = true;
  });
  // Held back while the reader before it keeps the projection waiting (a bounded look: it would
  // take its step at once otherwise).
  const auto look_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (!stepped && std::chrono::steady_clock::now() < look_until) std::this_thread::yield();
  EXPECT_FALSE(stepped);
  release = true;
  reader.join();
  projection.join();
  scanner.join();
  EXPECT_EQ(seen, 101u);  // its step came after the projection's
  EXPECT_FALSE(model.writer_waiting());
}

// The next two are for ThreadSanitizer above all (README, "Sanitizers"): a thread reads the
// tickets' states through references it then drops, and the projection, told so only through a
// relaxed flag (which orders nothing), changes those states in place. The model must itself
// order the reads before the changes; without that TSan reports a race at the first change.
TEST_F(ReadModelBatches, StatesReadByTheScheduleAreChangedInPlaceOnlyAfterIt) {
  const uint64_t end = log_->last_position();
  const uint64_t cut = end / 2;
  ReadModel restored;
  ASSERT_NO_FATAL_FAILURE(restore_timers_later(cut, restored));
  std::atomic<bool> computed{false}, applied{false};
  std::thread completion([&] {
    // The events apply between the computing and the completion's last step under the lock,
    // which would otherwise order them after the computing by itself.
    EXPECT_TRUE(restored.complete_schedule([&] {
      computed.store(true, std::memory_order_relaxed);
      while (!applied.load(std::memory_order_relaxed)) std::this_thread::yield();
    }));
  });
  while (!computed.load(std::memory_order_relaxed)) std::this_thread::yield();
  apply_range(*log_, restored, cut, end);
  applied.store(true, std::memory_order_relaxed);
  completion.join();
  ReadModel reference;
  apply_range(*log_, reference, 0, end);
  EXPECT_EQ(restored.dump(), reference.dump());
}

TEST_F(ReadModelBatches, StatesWrittenOutBySnapshotAreChangedInPlaceOnlyAfterIt) {
  const uint64_t end = log_->last_position();
  const uint64_t cut = end / 2;
  ReadModel model;
  apply_range(*log_, model, 0, cut);
  std::atomic<bool> saved{false};
  std::thread snapshotter([&] {
    EXPECT_TRUE(save_snapshot(*log_, model).ok());
    saved.store(true, std::memory_order_relaxed);
  });
  while (!saved.load(std::memory_order_relaxed)) std::this_thread::yield();
  apply_range(*log_, model, cut, end);
  snapshotter.join();
  ReadModel restored;
  std::string note;
  ASSERT_EQ(restore_snapshot(*log_, restored, &note), cut) << note;
  apply_range(*log_, restored, cut, end);
  EXPECT_EQ(restored.dump(), model.dump());
}

TEST_F(ReadModelBatches, ATicketListenerNotListeningGetsNoCopies) {
  // The stream hub says whether anyone is subscribed; a batch applied while it says no hands the
  // listener nothing (and copies nothing), later batches everything again, in position order.
  ReadModel model;
  bool listening = false;
  std::vector<uint64_t> heard;
  model.on_ticket_applied([&](uint64_t position, const std::string&, std::vector<AssigneeSpec>,
                              const TicketState&, const Value&) { heard.push_back(position); },
                          [&] { return listening; });
  const uint64_t last = log_->last_position(), half = last / 2;
  apply_range(*log_, model, 0, half);
  EXPECT_TRUE(heard.empty());
  listening = true;
  apply_range(*log_, model, half, last);
  std::vector<uint64_t> expected;
  ASSERT_TRUE(log_->read_all(half, SIZE_MAX,
                             [&](const storage::RecordedEvent& e) {
                               if (e.stream().substr(0, 7) == "ticket-")
                                 expected.push_back(e.position());
                               return true;
                             })
                  .ok());
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(heard, expected);
}

TEST(ReadModelSchedule, TimersCompletedOverManyChunksMatch) {
  // More tickets than complete_schedule() computes in one chunk (4096), a third of them 高
  // (SLA clocks) and every one waiting on an idle rule: the chunks must come back to the
  // tickets they were computed for, in order.
  testing::TempDir dir;
  auto log = testing::open_log(dir.path());
  ASSERT_TRUE(log);
  Catalog catalog;
  uint64_t ids = 0;
  auto batch_of = [&](const std::vector<DomainEvent>& events) {
    std::vector<storage::NewEvent> batch;
    for (const auto& e : events) batch.push_back(to_new_event(e, EventId::random_v4(2, ++ids), ""));
    return batch;
  };
  for (const auto& e : testing::reference_definitions(catalog)) {
    ASSERT_TRUE(
        log->append("definitions", storage::ExpectedVersion::Any(), batch_of({e})).status.ok());
  }
  constexpr size_t kTickets = 3 * 4096 + 17;
  std::atomic<size_t> failed{0};
  std::atomic<size_t> done{0};
  for (size_t i = 0; i < kTickets; ++i) {
    testing::TicketDriver d(catalog);
    d.new_ticket_id = ticket_id_for(i + 1);
    d.now_us = 1'790'000'000'000'000LL + static_cast<int64_t>(i) * 37'000'000;
    Object fields = testing::reference_submission();
    fields.emplace_back("priority", Value(i % 3 == 0 ? "高" : "中"));
    auto r = d.run(d.user("li"), SubmitTicket{"service_ticket", "service_flow", fields});
    ASSERT_TRUE(r.ok()) << r.error().message;
    log->append_async(ticket_stream(d.new_ticket_id), storage::ExpectedVersion::NoStream(),
                      batch_of(r.value()), [&](storage::AppendResult a) {
                        if (!a.status.ok()) ++failed;
                        ++done;
                      });
  }
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       done < kTickets && std::chrono::steady_clock::now() < deadline;) {
    log->wait_for_position(log->last_position() + 1, std::chrono::milliseconds(50));
  }
  ASSERT_EQ(done, kTickets);
  ASSERT_EQ(failed, 0u);

  ReadModel completed;
  ASSERT_TRUE(replay(*log, completed, 0, ReadModel::Timers::kLater).ok());
  EXPECT_EQ(completed.next_due(), INT64_MAX);  // left out
  ASSERT_TRUE(completed.complete_schedule());
  ReadModel reference;
  ASSERT_TRUE(replay(*log, reference, 0).ok());
  EXPECT_NE(reference.next_due(), INT64_MAX);
  EXPECT_EQ(completed.dump(), reference.dump());
}

TEST(ReadModelIndex, TicketsOfAnyIdAreIndexedAndListedAsTheirIds) {
  // The indexes hold ticket numbers; ids that are no number's (the server makes none) are held
  // as well, and a restore that meets them in another order than the replay gives the same views.
  EXPECT_EQ(ticket_id_for(42), "T-000042");
  EXPECT_EQ(ticket_id_for(999999), "T-999999");
  EXPECT_EQ(ticket_id_for(1000000), "T-1000000");
  EXPECT_EQ(ticket_number(ticket_id_for(18446744073ULL)), 18446744073ULL);
  testing::TempDir dir;
  auto log = testing::open_log(dir.path());
  ASSERT_TRUE(log);
  Catalog catalog;
  uint64_t event_ids = 0;
  auto append = [&](const std::string& stream, const std::vector<DomainEvent>& events) {
    std::vector<storage::NewEvent> batch;
    for (const auto& e : events)
      batch.push_back(to_new_event(e, EventId::random_v4(3, ++event_ids), ""));
    ASSERT_TRUE(log->append(stream, storage::ExpectedVersion::Any(), std::move(batch)).status.ok());
  };
  for (const auto& e : testing::reference_definitions(catalog)) append("definitions", {e});
  const std::vector<std::string> ids = {"X-7",       "T-000002",  "T-1",
                                        "T-1000000", "T-0000003", "T-000001"};
  std::map<std::string, std::string> node_after_submit;
  for (const auto& id : ids) {
    testing::TicketDriver d(catalog);
    d.new_ticket_id = id;
    d.now_us = 1'790'000'000'000'000LL;
    auto r = d.run(d.user("li"),
                   SubmitTicket{"service_ticket", "service_flow", testing::reference_submission()});
    ASSERT_TRUE(r.ok()) << r.error().message;
    append(ticket_stream(id), r.value());
    node_after_submit[id] = d.state.node;
    if (id == "T-1") {  // moves on: its entries leave one node's set for another's
      auto moved =
          d.run(d.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
      ASSERT_TRUE(moved.ok()) << moved.error().message;
      ASSERT_NE(d.state.node, node_after_submit[id]);
      append(ticket_stream(id), moved.value());
      node_after_submit[id] = d.state.node;
    }
  }

  ReadModel replayed;
  ASSERT_TRUE(replay(*log, replayed, 0).ok());
  replayed.read([&](const ReadModel::View& v) {
    auto listed = [&](const std::string& key) {
      std::set<std::string> out;
      auto it = v.index.find(key);
      if (it == v.index.end()) return out;
      for (TicketKey k : it->second) {
        const TicketState* t = v.ticket_by_key(k);
        EXPECT_NE(t, nullptr) << v.ticket_id(k);
        if (t) {
          EXPECT_EQ(t->id, v.ticket_id(k));
        }
        out.insert(v.ticket_id(k));
      }
      return out;
    };
    EXPECT_EQ(listed("form:service_ticket"), std::set<std::string>(ids.begin(), ids.end()));
    EXPECT_EQ(listed("state:open").size(), ids.size());
    for (const auto& [id, node] : node_after_submit) {
      EXPECT_TRUE(listed("node:" + node).count(id)) << id << " at " << node;
    }
    EXPECT_FALSE(listed("node:" + node_after_submit["X-7"]).count("T-1"));
    return 0;
  });
  // The timer schedule holds tickets by key too: each due timer names its ticket's id. (All but
  // T-1 wait at the first node, on its idle rule; T-1's next node has none.)
  std::set<std::string> timed;
  for (const auto& t : replayed.due_timers(INT64_MAX, 1000)) timed.insert(t.ticket);
  std::set<std::string> waiting(ids.begin(), ids.end());
  waiting.erase("T-1");
  EXPECT_EQ(timed, waiting);

  ASSERT_TRUE(save_snapshot(*log, replayed).ok());
  ReadModel restored;
  std::string note;
  ASSERT_EQ(restore_snapshot(*log, restored, &note), log->last_position()) << note;
  EXPECT_EQ(restored.dump(), replayed.dump());
}

TEST(ReadModelSessions, ASignInDropsTheSessionsThatExpiredBeforeIt) {
  testing::TempDir dir;
  auto log = testing::open_log(dir.path());
  ASSERT_TRUE(log);
  uint64_t ids = 0;
  auto append = [&](const std::string& user, DomainEvent e) {
    auto r = log->append("sessions-" + user, storage::ExpectedVersion::Any(),
                         {to_new_event(e, EventId::random_v4(2, ++ids), "")});
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  };
  auto sign_in = [&](const std::string& user, const std::string& hash, int64_t at,
                     int64_t expires_at) {
    Object data{{"user", Value(user)}, {"token_hash", Value(hash)}};
    if (expires_at) data.emplace_back("expires_at", Value(expires_at));
    append(user, {event_types::kSessionStarted, Value(std::move(data)), user, at, std::nullopt});
  };
  auto sessions = [](const ReadModel& model) {
    std::set<std::string> hashes;
    model.read([&](const ReadModel::View& v) {
      for (const auto& [hash, s] : v.sessions) hashes.insert(hash + "@" + s.user);
    });
    return hashes;
  };
  sign_in("li", "a", 100, 1000);
  sign_in("zhang", "b", 200, 0);  // signed in with no expiry (or before expiries were recorded)
  sign_in("wang", "c", 300, 5000);
  sign_in("li", "d", 400, 1000);
  append("li", {event_types::kSessionEnded, Value(Object{{"token_hash", Value("d")}}), "li", 500,
                std::nullopt});
  sign_in("zhao", "e", 1000, 9000);  // a session counts through its expiry
  ReadModel model;
  ASSERT_TRUE(replay(*log, model, 0).ok());
  EXPECT_EQ(sessions(model), (std::set<std::string>{"a@li", "b@zhang", "c@wang", "e@zhao"}));

  sign_in("qian", "f", 1001, 0);
  ASSERT_TRUE(replay(*log, model, model.applied_position()).ok());
  EXPECT_EQ(sessions(model), (std::set<std::string>{"b@zhang", "c@wang", "e@zhao", "f@qian"}));

  // A model restored from a snapshot knows the expiries too.
  ASSERT_TRUE(save_snapshot(*log, model).ok());
  ReadModel restored;
  std::string note;
  ASSERT_EQ(restore_snapshot(*log, restored, &note), log->last_position()) << note;
  EXPECT_EQ(sessions(restored), sessions(model));
  sign_in("li", "g", 6000, 0);
  for (ReadModel* m : {&model, &restored}) {
    ASSERT_TRUE(replay(*log, *m, m->applied_position()).ok());
    EXPECT_EQ(sessions(*m), (std::set<std::string>{"b@zhang", "e@zhao", "f@qian", "g@li"}));
  }
}

// A submission's Idempotency-Key is kept with the digest of its request, through a snapshot too;
// one recorded before digests (none in its data) is kept without, and so taken for any request.
TEST(ReadModelIdempotency, KeysKeepTheirRequestsDigestThroughASnapshot) {
  testing::TempDir dir;
  auto log = testing::open_log(dir.path());
  ASSERT_TRUE(log);
  uint64_t ids = 0;
  auto submit = [&](const std::string& ticket, const std::string& key, const std::string& digest) {
    Object data{{"id", Value(ticket)},       {"form", Value("f")},
                {"form_version", Value(1)},  {"flow", Value("fl")},
                {"flow_version", Value(1)},  {"fields", Value(Object{})},
                {"portal_code", Value("p")}, {"idempotency_key", Value(key)}};
    if (!digest.empty()) data.emplace_back("idempotency_digest", Value(digest));
    DomainEvent e{ticketd::event_types::kTicketSubmitted, Value(std::move(data)), "li", 1,
                  std::nullopt};
    auto r = log->append("ticket-" + ticket, storage::ExpectedVersion::NoStream(),
                         {to_new_event(e, EventId::random_v4(3, ++ids), "")});
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  };
  submit("T-000001", "li/old", "");
  submit("T-000002", "li/new", "d1g35t");
  auto keys = [](const ReadModel& model) {
    std::map<std::string, std::string> out;
    model.read([&](const ReadModel::View& v) {
      for (const auto& [key, made] : v.idempotency)
        out[key] = made.ticket + " " + made.request_digest;
    });
    return out;
  };
  const std::map<std::string, std::string> expected{{"li/old", "T-000001 "},
                                                    {"li/new", "T-000002 d1g35t"}};
  ReadModel model;
  ASSERT_TRUE(replay(*log, model, 0).ok());
  EXPECT_EQ(keys(model), expected);
  ASSERT_TRUE(save_snapshot(*log, model).ok());
  ReadModel restored;
  std::string note;
  ASSERT_EQ(restore_snapshot(*log, restored, &note), log->last_position()) << note;
  EXPECT_EQ(keys(restored), expected);
}

}  // namespace
}  // namespace ticketd::projections
