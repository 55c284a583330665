#include "storage/event_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "tests/open_log.h"
#include "tests/temp_dir.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::open_log;
using ticketd::testing::TempDir;

NewEvent make_event(std::mt19937_64& rng, std::string type = "TicketSubmitted",
                    std::string payload = R"({"n":1})") {
  NewEvent e;
  e.id = EventId::random_v4(rng(), rng());
  e.type = std::move(type);
  e.payload = std::move(payload);
  e.actor = "zhang";
  return e;
}

// Appends `count` events one at a time, round robin over the streams s-0 to s-(streams - 1).
void append_round_robin(EventLog& log, int count, int streams, std::mt19937_64& rng) {
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(
        log.append("s-" + std::to_string(i % streams), ExpectedVersion::Any(), {make_event(rng)})
            .status.ok());
  }
}

TEST(EventLog, AppendsAndReadsBackOneStream) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(1);
  auto r =
      log->append("ticket-T-1", ExpectedVersion::NoStream(),
                  {make_event(rng), make_event(rng, "FieldsChanged", R"({"客户名称":"华东"})")});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.stream_version, 2u);
  EXPECT_EQ(r.first_position, 1u);
  EXPECT_EQ(r.last_position, 2u);
  EXPECT_EQ(log->stream_head("ticket-T-1"), 2u);
  EXPECT_EQ(log->stream_head("ticket-T-10"), 0u);

  // A stream whose id is a prefix of another must not see the other's events.
  ASSERT_TRUE(
      log->append("ticket-T-10", ExpectedVersion::NoStream(), {make_event(rng)}).status.ok());
  std::vector<std::string> types;
  ASSERT_TRUE(log->read_stream("ticket-T-1", 1, 100,
                               [&](const RecordedEvent& e) {
                                 types.emplace_back(e.type());
                                 EXPECT_EQ(e.stream(), "ticket-T-1");
                                 return true;
                               })
                  .ok());
  EXPECT_EQ(types, (std::vector<std::string>{"TicketSubmitted", "FieldsChanged"}));

  std::string payload;
  log->read_stream("ticket-T-1", 2, 1, [&](const RecordedEvent& e) {
    payload = e.payload();
    EXPECT_EQ(e.version(), 2u);
    return true;
  });
  EXPECT_EQ(payload, R"({"客户名称":"华东"})");
}

// FlatBuffers reads an envelope's scalars in place, so every envelope a reader is handed must start
// on 8 bytes (its widest scalar), wherever RocksDB holds the value: in the memtable, or in a table
// file after a reopen.
TEST(EventLog, ReadersAreHandedEnvelopesOnEightByteBoundaries) {
  TempDir dir;
  std::mt19937_64 rng(7);
  auto log = open_log(dir / "log");
  for (int i = 0; i < 64; ++i) {  // payloads of every length mod 8, so values fall everywhere
    auto payload = R"({"note":")" + std::string(i, 'x') + R"("})";
    ASSERT_TRUE(log->append("s-" + std::to_string(i % 4), ExpectedVersion::Any(),
                            {make_event(rng, "NoteAdded", payload)})
                    .status.ok());
  }
  auto aligned = [](const RecordedEvent& e) {
    return reinterpret_cast<uintptr_t>(e.stored_bytes().data()) % 8 == 0;
  };
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t read = 0, misaligned = 0;
    ASSERT_TRUE(log->read_all(0, SIZE_MAX,
                              [&](const RecordedEvent& e) {
                                misaligned += !aligned(e);
                                EXPECT_EQ(e.position(), ++read);
                                EXPECT_EQ(e.payload().size(), 11 + (read - 1));
                                return true;
                              })
                    .ok());
    EXPECT_EQ(read, 64u);
    ASSERT_TRUE(log->read_stream("s-1", 1, 100,
                                 [&](const RecordedEvent& e) {
                                   misaligned += !aligned(e);
                                   return true;
                                 })
                    .ok());
    ASSERT_TRUE(log->read_at(6,
                             [&](const RecordedEvent& e) {
                               misaligned += !aligned(e);
                               EXPECT_EQ(e.version(), 2u);
                               return true;
                             })
                    .ok());
    EXPECT_EQ(misaligned, 0u) << (pass == 0 ? "before" : "after") << " a reopen";
    log.reset();
    log = open_log(dir / "log");
  }
}

TEST(EventLog, RefusesAppendsWhileTheDiskIsTooFullAndWritesNothing) {
  TempDir dir;
  std::mt19937_64 rng(7);
  {
    EventLogOptions options;
    options.path = dir / "log";
    options.min_free_bytes = UINT64_MAX / 2;  // more than any disk has
    std::unique_ptr<EventLog> log;
    ASSERT_TRUE(EventLog::Open(options, &log).ok());
    auto r = log->append("s", ExpectedVersion::Any(), {make_event(rng)});
    EXPECT_EQ(r.status.code(), Status::Code::kIOError);
    EXPECT_NE(r.status.ToString().find("no space left"), std::string::npos) << r.status.ToString();
    EXPECT_EQ(log->last_position(), 0u);
  }
  auto log = open_log(dir / "log");  // room again: the same log takes it
  EXPECT_EQ(log->last_position(), 0u);
  EXPECT_TRUE(log->append("s", ExpectedVersion::NoStream(), {make_event(rng)}).status.ok());
  EXPECT_EQ(log->last_position(), 1u);
}

TEST(EventLog, RejectsBadRequestsAlone) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(2);
  EXPECT_EQ(log->append("", ExpectedVersion::Any(), {make_event(rng)}).status.code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(
      log->append(std::string("a\0b", 3), ExpectedVersion::Any(), {make_event(rng)}).status.code(),
      Status::Code::kInvalidArgument);
  EXPECT_EQ(log->append("s", ExpectedVersion::Any(), {}).status.code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(
      log->append("s", ExpectedVersion::Any(), {make_event(rng, "T", "{not json")}).status.code(),
      Status::Code::kInvalidArgument);
  NewEvent e = make_event(rng);
  EXPECT_EQ(log->append("s", ExpectedVersion::Any(), {e, e}).status.code(),
            Status::Code::kInvalidArgument);
  std::vector<NewEvent> many;  // past the few events compared pairwise
  for (int i = 0; i < 40; ++i) many.push_back(make_event(rng));
  many.push_back(many[3]);
  EXPECT_EQ(log->append("s", ExpectedVersion::Any(), many).status.code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(log->last_position(), 0u);
  EXPECT_TRUE(log->append("s", ExpectedVersion::Any(), {make_event(rng)}).status.ok());
  EXPECT_EQ(log->last_position(), 1u);
}

TEST(EventLog, ExpectedVersionConflictsUnderConcurrency) {
  TempDir dir;
  auto log = open_log(dir / "log");
  constexpr int kThreads = 8;
  constexpr uint64_t kVersions = 200;
  std::map<uint64_t, int> winners;  // version -> how many appends won it
  std::mutex mu;
  std::atomic<uint64_t> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (;;) {
        uint64_t seen = log->stream_head("contested");
        if (seen >= kVersions) return;
        auto r = log->append("contested", ExpectedVersion::Exact(seen), {make_event(rng)});
        if (r.status.ok()) {
          std::lock_guard lk(mu);
          ++winners[r.stream_version];
          EXPECT_EQ(r.stream_version, seen + 1);
        } else {
          ASSERT_EQ(r.status.code(), Status::Code::kConflict) << r.status.ToString();
          EXPECT_GT(r.stream_version, seen);  // the conflict reports the current version
          conflicts.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(winners.size(), kVersions);
  for (auto& [version, count] : winners) EXPECT_EQ(count, 1) << "version " << version;
  EXPECT_GT(conflicts.load(), 0u) << "the threads never raced; the test proved nothing";
  EXPECT_EQ(log->stream_head("contested"), kVersions);
}

TEST(EventLog, RepeatedEventIdIsAnIdempotentNoOp) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(3);
  NewEvent a = make_event(rng), b = make_event(rng);
  auto first = log->append("s1", ExpectedVersion::NoStream(), {a, b});
  ASSERT_TRUE(first.status.ok());
  ASSERT_TRUE(log->append("s2", ExpectedVersion::Any(), {make_event(rng)}).status.ok());

  // Same ids again, even with an expected version that would now conflict: the original answer.
  auto again = log->append("s1", ExpectedVersion::NoStream(), {a, b});
  ASSERT_TRUE(again.status.ok()) << again.status.ToString();
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.first_position, first.first_position);
  EXPECT_EQ(again.last_position, first.last_position);
  EXPECT_EQ(again.stream_version, 2u);
  EXPECT_EQ(log->last_position(), 3u);

  // Part stored, part new: refused, nothing written.
  auto mixed = log->append("s1", ExpectedVersion::Any(), {a, make_event(rng)});
  EXPECT_EQ(mixed.status.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->last_position(), 3u);

  // Duplicates that arrive in the same group-commit batch: one write, both answered alike.
  NewEvent c = make_event(rng);
  std::vector<AppendResult> results(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] { results[i] = log->append("s3", ExpectedVersion::Any(), {c}); });
  }
  for (auto& th : threads) th.join();
  for (auto& r : results) {
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.last_position, 4u);
  }
  EXPECT_EQ(log->last_position(), 4u);
  EXPECT_EQ(log->stream_head("s3"), 1u);
}

TEST(EventLog, AFreshIdIsTakenAtItsWord) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(4);
  NewEvent fresh = make_event(rng);
  fresh.fresh_id = true;
  NewEvent derived = make_event(rng);
  ASSERT_TRUE(log->append("s1", ExpectedVersion::NoStream(), {fresh}).status.ok());
  ASSERT_TRUE(log->append("s2", ExpectedVersion::NoStream(), {derived}).status.ok());

  // Neither looked up nor indexed: the flag is the caller's promise that the id never comes
  // again, and breaking it writes the event again (which is why only ids drawn for the append
  // may carry it).
  auto broken = log->append("s1", ExpectedVersion::Any(), {fresh});
  ASSERT_TRUE(broken.status.ok()) << broken.status.ToString();
  EXPECT_FALSE(broken.duplicate);
  EXPECT_EQ(broken.last_position, 3u);
  EXPECT_EQ(log->read_event(fresh.id, [](const RecordedEvent&) { return true; }).code(),
            Status::Code::kNotFound);

  // An id that may come again is found, before and after a reopen (which leaves only the ids'
  // index to find it in), and its repeat is the original.
  for (int open = 0; open < 2; ++open) {
    if (open) {
      log.reset();
      log = open_log(dir / "log");
    }
    auto again = log->append("s2", ExpectedVersion::NoStream(), {derived});
    ASSERT_TRUE(again.status.ok()) << again.status.ToString();
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.last_position, 2u);
    uint64_t found = 0;
    ASSERT_TRUE(log->read_event(derived.id,
                                [&](const RecordedEvent& e) {
                                  found = e.position();
                                  return true;
                                })
                    .ok());
    EXPECT_EQ(found, 2u);
  }
  EXPECT_EQ(log->last_position(), 3u);
}

TEST(EventLog, GlobalOrderIsCommitOrderAndGapFree) {
  TempDir dir;
  auto log = open_log(dir / "log");
  constexpr int kThreads = 8, kPerThread = 500;
  std::vector<std::vector<uint64_t>> positions(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(200 + t);
      for (int i = 0; i < kPerThread; ++i) {
        auto r = log->append("s-" + std::to_string(t), ExpectedVersion::Any(),
                             {make_event(rng, "E", "{\"i\":" + std::to_string(i) + "}")});
        ASSERT_TRUE(r.status.ok());
        positions[t].push_back(r.last_position);
      }
    });
  }
  for (auto& th : threads) th.join();
  // Each thread's appends were committed in the order it made them.
  for (auto& p : positions) EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
  uint64_t expected = 1;
  std::map<std::string, uint64_t> versions;
  ASSERT_TRUE(log->read_all(0, SIZE_MAX,
                            [&](const RecordedEvent& e) {
                              EXPECT_EQ(e.position(), expected++);
                              EXPECT_EQ(e.version(), ++versions[std::string(e.stream())]);
                              return true;
                            })
                  .ok());
  EXPECT_EQ(expected - 1, uint64_t{kThreads * kPerThread});
}

TEST(EventLog, SubscriptionSeamHasNoGapAndNoDuplicate) {
  TempDir dir;
  auto log = open_log(dir / "log");
  constexpr uint64_t kTotal = 100000;
  constexpr int kWriters = 4;
  auto write_range = [&](int writer, uint64_t count) {
    std::mt19937_64 rng(300 + writer + count);
    for (uint64_t i = 0; i < count; i += 10) {
      std::vector<NewEvent> events;
      for (int k = 0; k < 10; ++k) events.push_back(make_event(rng));
      ASSERT_TRUE(log->append("w-" + std::to_string(writer) + "-" + std::to_string(i % 97),
                              ExpectedVersion::Any(), std::move(events))
                      .status.ok());
    }
  };
  // A fifth of the log exists before the subscribers start; the rest arrives while they read.
  write_range(0, kTotal / 5);

  struct Seen {
    std::vector<uint64_t> positions;
  };
  std::vector<Seen> seen(3);
  std::vector<uint64_t> starts = {0, 1234, kTotal / 5};
  std::vector<std::unique_ptr<Subscription>> subs;
  for (size_t i = 0; i < seen.size(); ++i) {
    subs.push_back(log->subscribe(starts[i], [&seen, i](const RecordedEvent& e) {
      seen[i].positions.push_back(e.position());
    }));
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] { write_range(w + 1, (kTotal - kTotal / 5) / kWriters); });
  }
  for (auto& th : writers) th.join();
  ASSERT_EQ(log->last_position(), kTotal);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (auto& s : subs) {
    while (s->position() < kTotal && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  subs.clear();
  for (size_t i = 0; i < seen.size(); ++i) {
    const auto& p = seen[i].positions;
    ASSERT_EQ(p.size(), kTotal - starts[i]) << "subscriber " << i;
    for (size_t k = 0; k < p.size(); ++k) {
      ASSERT_EQ(p[k], starts[i] + k + 1) << "subscriber " << i << " at " << k;
    }
  }
}

TEST(EventLog, LiveSubscriberGetsTheStoredEventsFromMemory) {
  // A subscriber that keeps up takes each committed batch from memory: every event it is given
  // must be the one stored at its position, byte for byte, with no gap across batches of all
  // sizes written by racing appenders; an event appended with the value of its payload comes
  // with that value, and no other event does.
  TempDir dir;
  auto log = open_log(dir / "log");
  struct Delivered {
    uint64_t position;
    std::string envelope;
    std::optional<std::string> payload_value;  // as JSON
  };
  std::vector<Delivered> delivered;
  auto sub = log->subscribe(0, [&](const RecordedEvent& e) {
    delivered.push_back(
        {e.position(), std::string(e.stored_bytes()),
         e.payload_value() ? std::optional(e.payload_value()->to_json()) : std::nullopt});
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&log, w] {
      std::mt19937_64 rng(700 + w);
      for (int i = 0; i < 500; ++i) {
        std::vector<NewEvent> events;
        for (int k = 0, n = 1 + static_cast<int>(rng() % 5); k < n; ++k) {
          events.push_back(make_event(rng));
          if (rng() % 2) {
            Value v(Object{{"writer", Value(w)}, {"i", Value(i)}, {"k", Value(k)}});
            events.back().payload = v.to_json();
            events.back().payload_value = std::move(v);
          }
        }
        ASSERT_TRUE(
            log->append("live-" + std::to_string(w), ExpectedVersion::Any(), std::move(events))
                .status.ok());
      }
    });
  }
  for (auto& t : writers) t.join();
  const uint64_t last = log->last_position();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sub->position() < last && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  sub.reset();
  ASSERT_EQ(delivered.size(), last);
  size_t with_values = 0;
  for (size_t i = 0; i < delivered.size(); ++i) {
    ASSERT_EQ(delivered[i].position, i + 1);
    std::string stored, payload;
    ASSERT_TRUE(log->read_at(i + 1,
                             [&](const RecordedEvent& e) {
                               EXPECT_EQ(e.payload_value(), nullptr);  // read from storage
                               stored = std::string(e.stored_bytes());
                               payload = std::string(e.payload());
                               return true;
                             })
                    .ok());
    ASSERT_EQ(delivered[i].envelope, stored) << "at position " << i + 1;
    if (delivered[i].payload_value) {
      ++with_values;
      ASSERT_EQ(*delivered[i].payload_value, payload) << "at position " << i + 1;
      ASSERT_NE(payload, R"({"n":1})");  // make_event's payload: appended without a value
    }
  }
  EXPECT_GT(log->stats().delivered_from_memory, 0u);
  EXPECT_GT(with_values, 0u);
}

TEST(EventLog, SubscriberRunEndingInsideAKeptBatchGoesOnFromThere) {
  // 64 batches of 100 events (as many batches as the log keeps), all still in memory when the
  // subscriber starts: its first run (4,096 events at most) ends inside the 41st batch, and the
  // next starts right after it.
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(9);
  for (int b = 0; b < 64; ++b) {
    std::vector<NewEvent> events;
    for (int k = 0; k < 100; ++k) events.push_back(make_event(rng));
    ASSERT_TRUE(log->append("kept", ExpectedVersion::Any(), std::move(events)).status.ok());
  }
  std::vector<uint64_t> positions;
  uint64_t in_run = 0, largest_run = 0;
  auto sub = log->subscribe(
      0,
      [&](const RecordedEvent& e) {
        positions.push_back(e.position());
        ++in_run;
      },
      [&] { largest_run = std::max(largest_run, std::exchange(in_run, 0)); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sub->position() < 6400 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  sub.reset();
  ASSERT_EQ(positions.size(), 6400u);
  for (size_t i = 0; i < positions.size(); ++i) ASSERT_EQ(positions[i], i + 1);
  EXPECT_EQ(largest_run, 4096u);
  EXPECT_EQ(log->stats().delivered_from_memory, 6400u);
}

TEST(EventLog, SlowSubscriberDoesNotBlockAppends) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::atomic<bool> release{false};
  std::atomic<uint64_t> delivered{0};
  auto sub = log->subscribe(0, [&](const RecordedEvent&) {
    while (!release.load()) std::this_thread::yield();
    delivered.fetch_add(1);
  });
  std::mt19937_64 rng(4);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(log->append("s", ExpectedVersion::Any(), {make_event(rng)}).status.ok());
  }
  EXPECT_EQ(log->last_position(), 200u);
  EXPECT_EQ(delivered.load(), 0u);
  release.store(true);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sub->position() < 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(delivered.load(), 200u);
}

TEST(EventLog, SubscriptionEndsEachRunOfEventsWithAfterRun) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(6);
  for (int i = 0; i < 5000; ++i) {  // stored before: read in runs of at most 4,096
    ASSERT_TRUE(log->append("s", ExpectedVersion::Any(), {make_event(rng)}).status.ok());
  }
  // Touched by the subscription's thread only until it is stopped.
  uint64_t delivered = 0, in_run = 0, runs = 0, largest_run = 0;
  bool empty_run = false;
  std::atomic<uint64_t> settled{0};  // events delivered as of the last after_run
  auto sub = log->subscribe(
      0,
      [&](const RecordedEvent&) {
        ++delivered;
        ++in_run;
      },
      [&] {
        empty_run |= in_run == 0;
        largest_run = std::max(largest_run, in_run);
        in_run = 0;
        ++runs;
        settled.store(delivered);
      });
  for (int i = 0; i < 300; ++i) {  // live: each run is what committed since the last
    ASSERT_TRUE(log->append("s", ExpectedVersion::Any(), {make_event(rng)}).status.ok());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (settled.load() < 5300 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  sub.reset();
  EXPECT_EQ(delivered, 5300u);
  EXPECT_EQ(settled.load(), 5300u);  // every delivered event was followed by an after_run
  EXPECT_FALSE(empty_run);
  EXPECT_GE(runs, 2u);
  EXPECT_LE(largest_run, 4096u);
}

TEST(EventLog, CleanCloseLeavesNoWalToReplay) {
  TempDir dir;
  std::mt19937_64 rng(8);
  {
    auto log = open_log(dir / "log");
    ASSERT_NO_FATAL_FAILURE(append_round_robin(*log, 500, 7, rng));
  }
  // Every column family was flushed at close: the WAL files RocksDB keeps are empty.
  uintmax_t wal_bytes = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir / "log")) {
    if (f.path().extension() == ".log") wal_bytes += f.file_size();
  }
  EXPECT_EQ(wal_bytes, 0u);
  auto log = open_log(dir / "log");
  EXPECT_EQ(log->last_position(), 500u);
  EXPECT_EQ(log->stream_head("s-2"), 72u);  // 500 = 7 x 71 + 3: s-0 to s-2 have one more
  EXPECT_EQ(log->stream_head("s-3"), 71u);
}

TEST(EventLog, ReopenRecoversHeadsPositionAndChain) {
  TempDir dir;
  std::mt19937_64 rng(5);
  {
    auto log = open_log(dir / "log");
    ASSERT_NO_FATAL_FAILURE(append_round_robin(*log, 30, 3, rng));
  }
  auto log = open_log(dir / "log");
  EXPECT_EQ(log->last_position(), 30u);
  EXPECT_EQ(log->stream_head("s-0"), 10u);
  auto r = log->append("s-0", ExpectedVersion::Exact(10), {make_event(rng)});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.last_position, 31u);
  auto report = log->verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, 31u);
}

TEST(EventLog, CheckpointsAndAttachments) {
  TempDir dir;
  auto log = open_log(dir / "log");
  uint64_t pos = 0;
  EXPECT_EQ(log->load_checkpoint("views", &pos).code(), Status::Code::kNotFound);
  ASSERT_TRUE(log->save_checkpoint("views", 42).ok());
  ASSERT_TRUE(log->load_checkpoint("views", &pos).ok());
  EXPECT_EQ(pos, 42u);

  std::string big(1 << 20, 'x');
  ASSERT_TRUE(log->put_attachment("a-1", big).ok());
  std::string read;
  ASSERT_TRUE(log->get_attachment("a-1", &read).ok());
  EXPECT_EQ(read, big);
  EXPECT_EQ(log->get_attachment("a-2", &read).code(), Status::Code::kNotFound);
}

TEST(EventLog, ReadOnlyHandleRefusesAppends) {
  TempDir dir;
  std::mt19937_64 rng(6);
  {
    auto log = open_log(dir / "log");
    ASSERT_TRUE(log->append("s", ExpectedVersion::Any(), {make_event(rng)}).status.ok());
  }
  auto ro = open_log(dir / "log", /*read_only=*/true);
  EXPECT_EQ(ro->last_position(), 1u);
  EXPECT_EQ(ro->append("s", ExpectedVersion::Any(), {make_event(rng)}).status.code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ticketd::storage
