#include "storage/prefilled_wal.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ticketd::storage {
namespace {

using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

bool is_wal(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
}

// Writes [offset, offset + n) of fill and syncs it. The range is allocated first, so until the
// fill is on disk it reads as zeros (an unwritten extent), never as whatever blocks it was given
// held before — the one thing that could pass for records.
bool write_fill(int fd, uint64_t offset, size_t n) {
  static const std::vector<char> fill(1 << 20, static_cast<char>(kWalFillByte));
  if (::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(n)) != 0 &&
      errno != EOPNOTSUPP) {
    return false;
  }
  while (n > 0) {
    ssize_t w = ::pwrite(fd, fill.data(), std::min(n, fill.size()), static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    offset += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
  return ::fdatasync(fd) == 0;
}

// What one WAL file shares with its filling thread. Data and fill never overlap: the writer
// reserves its range under the mutex and never writes into a step in flight, and a step always
// starts past the data.
class Filler {
 public:
  Filler(int fd, const PrefilledWalOptions& options) : fd_(fd), options_(options) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "wal-fill");
      run();
    });
  }
  ~Filler() {
    finish();
    ::close(fd_);
  }

  // Where a write of n bytes goes; waits while it would reach into a step in flight. A write
  // past the fill (a failed step, or more than is filled) is an ordinary append.
  uint64_t reserve(size_t n) {
    std::unique_lock lk(mu_);
    const uint64_t end = data_end_ + n;
    cv_.wait(lk, [&] { return !stepping_ || end <= filled_; });
    uint64_t offset = data_end_;
    data_end_ = end;
    filled_ = std::max(filled_, end);
    if (wants_step()) cv_.notify_all();
    return offset;
  }

  // Stops filling and cuts the file back to its data (synced, so a power cut cannot bring the
  // fill back behind a newer WAL). Idempotent. Appends after it are ordinary appends.
  void finish() {
    {
      std::unique_lock lk(mu_);
      if (finished_) return;
      finished_ = true;
      cv_.notify_all();
      cv_.wait(lk, [&] { return !stepping_; });
      if (touched_ > data_end_) {
        if (::ftruncate(fd_, static_cast<off_t>(data_end_)) == 0) ::fdatasync(fd_);
        filled_ = touched_ = data_end_;
      }
    }
    std::lock_guard lk(join_mu_);  // the file's close and the next file's creation may race here
    if (thread_.joinable()) thread_.join();
  }

 private:
  bool wants_step() const {
    return !finished_ && !failed_ && filled_ - data_end_ < options_.low_water_bytes;
  }

  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return finished_ || wants_step(); });
      if (finished_) return;
      const uint64_t from = filled_;
      stepping_ = true;
      touched_ = std::max(touched_, from + options_.step_bytes);
      lk.unlock();
      bool ok = write_fill(fd_, from, options_.step_bytes);
      lk.lock();
      stepping_ = false;
      if (ok) {
        filled_ = from + options_.step_bytes;
      } else {
        failed_ = true;  // say a full disk: the rest of this file is appended as usual
      }
      cv_.notify_all();
    }
  }

  const int fd_;
  const PrefilledWalOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t data_end_ = 0;  // data reserved (written or being written) up to here
  uint64_t filled_ = 0;    // data or synced fill up to here; a step fills from here
  uint64_t touched_ = 0;   // the file may hold fill up to here (a failed step's, too)
  bool stepping_ = false;
  bool finished_ = false;
  bool failed_ = false;
  std::mutex join_mu_;
  std::thread thread_;
};

class PrefilledWalFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  PrefilledWalFile(std::unique_ptr<FSWritableFile> file, std::shared_ptr<Filler> filler)
      : FSWritableFileOwnerWrapper(std::move(file)), filler_(std::move(filler)) {}

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    return target()->PositionedAppend(data, filler_->reserve(data.size()), options, dbg);
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& /*verification_info*/,
                  IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    filler_->finish();
    return target()->Close(options, dbg);
  }
  // The space is the filler's: RocksDB's own preallocation (fallocate with KEEP_SIZE) would only
  // make the close trim the file to what it thinks is the end.
  void PrepareWrite(size_t, size_t, const IOOptions&, IODebugContext*) override {}
  IOStatus Allocate(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }

 private:
  std::shared_ptr<Filler> filler_;
};

class PrefilledWalFileSystem : public rocksdb::FileSystemWrapper {
 public:
  PrefilledWalFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                         const PrefilledWalOptions& options)
      : FileSystemWrapper(std::move(base)), options_(options) {}

  static const char* kClassName() { return "ticketd.PrefilledWalFileSystem"; }
  const char* Name() const override { return kClassName(); }

  IOStatus NewWritableFile(const std::string& name, const FileOptions& file_options,
                           std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) override {
    if (!is_wal(name)) return target()->NewWritableFile(name, file_options, result, dbg);
    // RocksDB appends only to its newest WAL: the one before it gets no more data.
    std::lock_guard lk(mu_);
    if (auto previous = newest_.lock()) previous->finish();
    std::unique_ptr<FSWritableFile> file;
    IOStatus s = target()->NewWritableFile(name, file_options, &file, dbg);
    if (!s.ok()) return s;
    int fd = ::open(name.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      *result = std::move(file);  // no fill: an ordinary WAL file
      return IOStatus::OK();
    }
    auto filler = std::make_shared<Filler>(fd, options_);
    newest_ = filler;
    *result = std::make_unique<PrefilledWalFile>(std::move(file), std::move(filler));
    return IOStatus::OK();
  }

 private:
  const PrefilledWalOptions options_;
  std::mutex mu_;
  std::weak_ptr<Filler> newest_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewPrefilledWalFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, const PrefilledWalOptions& options) {
  return std::make_shared<PrefilledWalFileSystem>(std::move(base), options);
}

}  // namespace ticketd::storage
