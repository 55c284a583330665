// Backups of the running server: a copy of the log an operator can keep elsewhere and start a
// server or ticketctl on (storage/event_log.h, EventLog::backup).
#include <pthread.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include "api/api.h"
#include "api/call.h"
#include "domain/time_format.h"
#include "storage/hash_chain.h"

namespace ticketd::api {
namespace {

namespace fs = std::filesystem;

// "ticketd-20261130T151200Z": sorts by time, and is a valid directory name everywhere.
std::string backup_name(int64_t now_us) {
  std::string t = format_rfc3339(now_us - now_us % 1'000'000);  // 2026-11-30T15:12:00Z
  std::string name = "ticketd-";
  for (char c : t) {
    if (c != '-' && c != ':') name += c;
  }
  return name;
}

}  // namespace

// Administrators only: a backup holds every field of every ticket and every password hash.
void Api::post_backup(const CallPtr& call) {
  if (!call->actor.admin) return call->fail(403, codes::kForbidden, "only administrators back up");
  if (options_.backup_dir.empty()) {
    return call->fail(503, "unavailable", "backups are off: start the server with --backup-dir");
  }
  std::lock_guard lk(backup_mu_);
  if (backing_up_) {
    return call->fail(409, codes::kConflict, "a backup is being made: try again when it is done");
  }
  if (backup_thread_.joinable()) backup_thread_.join();  // done: it cleared backing_up_
  backing_up_ = true;
  backup_thread_ = std::thread([this, call] {
    pthread_setname_np(pthread_self(), "backup");
    make_backup(call);
    std::lock_guard done(backup_mu_);
    backing_up_ = false;
  });
}

void Api::make_backup(const CallPtr& call) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(options_.backup_dir, ec);
  const fs::path root = fs::absolute(options_.backup_dir, ec).lexically_normal();
  fs::path dir = root / backup_name(now_us());
  for (int n = 2; fs::exists(dir, ec); ++n) {
    dir = root / (backup_name(now_us()) + "-" + std::to_string(n));
  }
  if (!fs::create_directory(dir, ec)) {
    return call->fail(
        503, "unavailable",
        "cannot create " + dir.string() + ": " + (ec ? ec.message() : std::string("it exists")));
  }
  if (storage::Status s = log_.backup((dir / "log").string()); !s.ok()) {
    fs::remove_all(dir, ec);  // half a copy is no backup
    return call->fail(503, "unavailable", "the backup failed: " + s.ToString());
  }
  // What the copy holds, read back from the copy itself.
  storage::EventLogOptions options;
  options.path = (dir / "log").string();
  options.read_only = true;
  std::unique_ptr<storage::EventLog> copy;
  if (storage::Status s = storage::EventLog::Open(options, &copy); !s.ok()) {
    fs::remove_all(dir, ec);
    return call->fail(503, "unavailable", "the backup does not open: " + s.ToString());
  }
  const uint64_t position = copy->last_position();
  std::string head;
  if (position > 0) {
    copy->read_at(position, [&](const storage::RecordedEvent& e) {
      head = storage::to_hex(e.hash());
      return false;
    });
  }
  copy.reset();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  JsonWriter w;
  w.begin_object().key("path").string(dir.string()).key("position").number(position);
  w.key("head").string(head).key("seconds").number(seconds).end_object();
  call->ok(201, w.take());
}

}  // namespace ticketd::api
