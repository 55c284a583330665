// Backups of the running server: a copy of the log an operator can keep elsewhere and start a
// server or ticketctl on (storage/event_log.h, EventLog::backup).
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <system_error>
#include <vector>

#include "api/api.h"
#include "api/call.h"
#include "domain/time_format.h"
#include "domain/value.h"
#include "storage/hash_chain.h"

namespace ticketd::api {
namespace {

namespace fs = std::filesystem;

struct BackupInfo {
  std::string name;  // the directory's, under --backup-dir
  std::string path;
  uint64_t position = 0;
  std::string head;
  std::string created_at;
  std::string order = {};  // the list's page cursor
};

// "ticketd-20261130T151200Z": sorts by time, and is a valid directory name everywhere.
std::string backup_name(int64_t now_us) {
  std::string t = format_rfc3339(now_us - now_us % 1'000'000);  // 2026-11-30T15:12:00Z
  std::string name = "ticketd-";
  for (char c : t) {
    if (c != '-' && c != ':') name += c;
  }
  return name;
}

constexpr char kManifest[] = "backup.json";

bool is_backup_name(const std::string& name) {
  if (name.rfind("ticketd-", 0) != 0 || name.size() > 64) return false;
  return std::all_of(name.begin() + 8, name.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == 'T' || c == 'Z' || c == '-';
  });
}

// With `seconds`, how long making it took (its answer says so; the manifest does not).
void write_backup(JsonWriter& w, const BackupInfo& b, std::optional<double> seconds = {}) {
  w.begin_object().key("name").string(b.name).key("path").string(b.path);
  w.key("position").number(b.position).key("head").string(b.head);
  w.key("created_at").string(b.created_at);
  if (seconds) w.key("seconds").number(*seconds);
  w.end_object();
}

fs::path backup_root(const std::string& dir) {
  std::error_code ec;
  return fs::absolute(dir, ec).lexically_normal();
}

bool write_manifest(const fs::path& dir, std::string_view json) {
  std::ofstream out(dir / kManifest, std::ios::binary | std::ios::trunc);
  out << json << "\n";
  out.close();
  return static_cast<bool>(out);
}

// A backup directory's manifest; nullopt for anything else (a copy being made has none yet).
std::optional<BackupInfo> read_manifest(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (!is_backup_name(name)) return std::nullopt;
  std::ifstream in(dir / kManifest, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Value v;
  std::string error;
  if (!parse_json(text, &v, &error) || !v.is_object()) return std::nullopt;
  return BackupInfo{name, dir.string(), static_cast<uint64_t>(v["position"].as_number()),
                    v.string_or("head"), v.string_or("created_at")};
}

// Backups a crash cut short: named as ours, without the manifest a whole one gets, and older than
// any backup takes (another server sharing the directory may be making one right now).
void remove_abandoned(const fs::path& root) {
  constexpr auto kOlderThan = std::chrono::hours(1);
  std::error_code ec;
  std::vector<fs::path> abandoned;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!is_backup_name(name) || fs::exists(entry.path() / kManifest, ec)) continue;
    // A copy in the making adds files to its log directory, which moves that directory's time.
    auto modified = fs::last_write_time(entry.path(), ec);
    if (ec) continue;
    if (auto log = fs::last_write_time(entry.path() / "log", ec); !ec) {
      modified = std::max(modified, log);
    }
    if (fs::file_time_type::clock::now() - modified > kOlderThan) abandoned.push_back(entry.path());
  }
  for (const auto& dir : abandoned) fs::remove_all(dir, ec);
}

// The whole backups under `dir`, newest first; `order` is the list's page cursor (the inverted
// time of making, then the name).
std::vector<BackupInfo> backups_newest_first(const std::string& dir) {
  std::vector<BackupInfo> backups;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(backup_root(dir), ec)) {
    if (auto b = read_manifest(entry.path())) backups.push_back(std::move(*b));
  }
  for (auto& b : backups) {
    const int64_t made = parse_rfc3339(b.created_at).value_or(0);
    b.order = newest_first_key(made, b.name);
  }
  std::sort(backups.begin(), backups.end(),
            [](const BackupInfo& a, const BackupInfo& b) { return a.order < b.order; });
  return backups;
}

}  // namespace

// Administrators only: a backup holds every field of every ticket and every password hash.
bool Api::backups_allowed(const CallPtr& call) {
  if (!call->actor.admin) {
    call->fail(403, codes::kForbidden, "only administrators back up");
    return false;
  }
  if (options_.backup_dir.empty()) {
    call->fail(503, "unavailable", "backups are off: start the server with --backup-dir");
    return false;
  }
  return true;
}

void Api::post_backup(const CallPtr& call) {
  if (!backups_allowed(call)) return;
  std::lock_guard lk(backup_mu_);
  if (backing_up_) {
    return call->fail(409, codes::kConflict, "a backup is being made: try again when it is done");
  }
  if (backup_thread_.joinable()) backup_thread_.join();  // done: it cleared backing_up_
  backing_up_ = true;
  backup_thread_ = std::thread([this, call] {
    pthread_setname_np(pthread_self(), "backup");
    std::string body, error;
    const bool made = make_backup(&body, &error);
    {
      std::lock_guard done(backup_mu_);
      backing_up_ = false;
    }
    // Answered once the next backup may start: a script that backs up twice in a row is not
    // told to wait for the one it was just told is done.
    if (made) return call->ok(201, std::move(body));
    call->fail(503, "unavailable", error);
  });
}

bool Api::make_backup(std::string* body, std::string* error) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  // A backup holds what the log holds: a directory made here is its user's alone.
  if (!fs::exists(options_.backup_dir, ec) && fs::create_directories(options_.backup_dir, ec)) {
    fs::permissions(options_.backup_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  const fs::path root = backup_root(options_.backup_dir);
  remove_abandoned(root);
  fs::path dir = root / backup_name(now_us());
  for (int n = 2; fs::exists(dir, ec); ++n) {
    dir = root / (backup_name(now_us()) + "-" + std::to_string(n));
  }
  if (!fs::create_directory(dir, ec)) {
    *error =
        "cannot create " + dir.string() + ": " + (ec ? ec.message() : std::string("it exists"));
    return false;
  }
  if (storage::Status s = log_.backup((dir / "log").string()); !s.ok()) {
    fs::remove_all(dir, ec);  // half a copy is no backup
    *error = "the backup failed: " + s.ToString();
    return false;
  }
  // What the copy holds, read back from the copy itself.
  storage::EventLogOptions options;
  options.path = (dir / "log").string();
  options.read_only = true;
  std::unique_ptr<storage::EventLog> copy;
  if (storage::Status s = storage::EventLog::Open(options, &copy); !s.ok()) {
    fs::remove_all(dir, ec);
    *error = "the backup does not open: " + s.ToString();
    return false;
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
  const BackupInfo made{dir.filename().string(), dir.string(), position, head,
                        format_rfc3339(now_us())};
  JsonWriter manifest;
  write_backup(manifest, made);
  // The list of backups reads this instead of opening every copy.
  if (!write_manifest(dir, manifest.str())) {
    fs::remove_all(dir, ec);
    *error = "cannot write " + (dir / kManifest).string();
    return false;
  }
  // --backup-keep: the oldest whole backups beyond that many go (never this one: it is the newest).
  if (options_.backup_keep > 0) {
    std::vector<BackupInfo> all = backups_newest_first(options_.backup_dir);
    for (size_t i = options_.backup_keep; i < all.size(); ++i) fs::remove_all(all[i].path, ec);
  }
  JsonWriter w;
  write_backup(w, made, seconds);
  *body = w.take();
  return true;
}

// The backups under --backup-dir, newest first, as their manifests describe them.
void Api::list_backups(const CallPtr& call) {
  if (!backups_allowed(call)) return;
  IdPage page;
  if (!page.parse(*call)) return;
  std::vector<BackupInfo> backups = backups_newest_first(options_.backup_dir);
  JsonWriter w;
  page.write(
      w, backups, [](const BackupInfo& b) -> const std::string& { return b.order; },
      [&](const BackupInfo& b) { write_backup(w, b); });
  call->ok(200, w.take());
}

void Api::delete_backup(const CallPtr& call, const std::string& name) {
  if (!backups_allowed(call)) return;
  // Only a name the list gives: nothing else under the directory, nothing outside it.
  const fs::path dir = backup_root(options_.backup_dir) / name;
  if (!is_backup_name(name) || !read_manifest(dir)) {
    return call->fail(404, codes::kNotFound, "no backup " + name);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    return call->fail(503, "unavailable", "cannot remove " + dir.string() + ": " + ec.message());
  JsonWriter w;
  w.begin_object().key("name").string(name).key("deleted").boolean(true).end_object();
  call->ok(200, w.take());
}

}  // namespace ticketd::api
