#include "storage/prefilled_wal.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
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

  // The same for a direct write: data up to data_end, written up to the block boundary
  // write_end (its last block's rest is fill). Direct writes keep `filled_` on a block boundary,
  // so a step never shares a page with them.
  void reserve_through(uint64_t data_end, uint64_t write_end) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !stepping_ || write_end <= filled_; });
    data_end_ = data_end;
    filled_ = std::max(filled_, write_end);
    touched_ = std::max(touched_, write_end);
    if (wants_step()) cv_.notify_all();
  }

  // Data up to `end` is in the file now (reserved ranges are written after their reservation).
  void wrote_through(uint64_t end) {
    std::lock_guard lk(mu_);
    readable_ = std::max(readable_, end);
  }

  // How much of the file a reader may take as data while it is written: the data written, not
  // the fill after it. Nullopt once the file is cut back to its data.
  std::optional<uint64_t> read_limit() {
    std::lock_guard lk(mu_);
    if (finished_) return std::nullopt;
    return readable_;
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
  uint64_t readable_ = 0;  // data written up to here
  bool stepping_ = false;
  bool finished_ = false;
  bool failed_ = false;
  std::mutex join_mu_;
  std::thread thread_;
};

constexpr uint64_t kDirectBlock = 4096;  // O_DIRECT's alignment for offsets, lengths, memory

uint64_t block_floor(uint64_t v) { return v & ~(kDirectBlock - 1); }
uint64_t block_ceil(uint64_t v) { return block_floor(v + kDirectBlock - 1); }

IOStatus write_error(const char* what, int err) {
  std::string message = std::string(what) + ": " + std::strerror(err);
  return err == ENOSPC || err == EDQUOT ? IOStatus::NoSpace(message) : IOStatus::IOError(message);
}

// Opens `name` for durable direct writes, or returns -1 when its file system cannot take them
// (then the file is written through the page cache and fdatasync). The probe writes one block of
// fill at the start of the still empty file, as the filler would.
int open_direct(const std::string& name) {
  int fd = ::open(name.c_str(), O_WRONLY | O_DIRECT | O_DSYNC | O_CLOEXEC);
  if (fd < 0) return -1;
  void* block = nullptr;
  if (::posix_memalign(&block, kDirectBlock, kDirectBlock) != 0) {
    ::close(fd);
    return -1;
  }
  std::memset(block, kWalFillByte, kDirectBlock);
  const bool ok = ::pwrite(fd, block, kDirectBlock, 0) == static_cast<ssize_t>(kDirectBlock);
  std::free(block);
  if (!ok) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class PrefilledWalFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  // `direct_fd` (or -1) is open with O_DIRECT | O_DSYNC; the file then owns it.
  PrefilledWalFile(std::unique_ptr<FSWritableFile> file, std::shared_ptr<Filler> filler,
                   int direct_fd)
      : FSWritableFileOwnerWrapper(std::move(file)),
        filler_(std::move(filler)),
        direct_fd_(direct_fd) {}
  ~PrefilledWalFile() override {
    if (direct_fd_ >= 0) ::close(direct_fd_);
  }

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    if (direct_fd_ < 0) {
      const uint64_t offset = filler_->reserve(data.size());
      IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
      if (s.ok()) filler_->wrote_through(offset + data.size());
      return s;
    }
    std::lock_guard lk(direct_mu_);
    const size_t used = static_cast<size_t>(end_ - tail_start_);
    if (!reserve_tail(used + data.size())) {
      return IOStatus::IOError("out of memory for the WAL's unwritten tail");
    }
    std::memcpy(tail_.get() + used, data.data(), data.size());
    end_ += data.size();
    return IOStatus::OK();
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& /*verification_info*/,
                  IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  // Direct: a flush is already durable, so a sync has nothing left to do.
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override {
    if (direct_fd_ < 0) return target()->Flush(options, dbg);
    std::lock_guard lk(direct_mu_);
    return write_tail();
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    if (direct_fd_ < 0) return target()->Sync(options, dbg);
    return Flush(options, dbg);
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (direct_fd_ < 0) return target()->Fsync(options, dbg);
    return Flush(options, dbg);
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    if (direct_fd_ < 0) return target()->RangeSync(offset, nbytes, options, dbg);
    return IOStatus::OK();
  }
  uint64_t GetFileSize(const IOOptions& options, IODebugContext* dbg) override {
    if (direct_fd_ < 0) return target()->GetFileSize(options, dbg);
    std::lock_guard lk(direct_mu_);
    return end_;
  }
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    IOStatus written;
    if (direct_fd_ >= 0) {
      std::lock_guard lk(direct_mu_);
      written = write_tail();
    }
    filler_->finish();
    IOStatus closed = target()->Close(options, dbg);
    return written.ok() ? closed : written;
  }
  // The space is the filler's: RocksDB's own preallocation (fallocate with KEEP_SIZE) would only
  // make the close trim the file to what it thinks is the end.
  void PrepareWrite(size_t, size_t, const IOOptions&, IODebugContext*) override {}
  IOStatus Allocate(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }

 private:
  // Room in tail_ for `bytes` of data and the fill that rounds them up to a block; false when
  // memory ran out (an error for RocksDB, never an exception through it).
  bool reserve_tail(size_t bytes) {
    const size_t need = static_cast<size_t>(block_ceil(bytes));
    if (need <= capacity_) return true;
    const size_t capacity = std::max(need, 2 * capacity_);
    std::unique_ptr<char, FreeDeleter> grown(
        static_cast<char*>(std::aligned_alloc(kDirectBlock, capacity)));
    if (!grown) return false;
    if (tail_) std::memcpy(grown.get(), tail_.get(), static_cast<size_t>(end_ - tail_start_));
    tail_ = std::move(grown);
    capacity_ = capacity;
    return true;
  }

  // One O_DIRECT | O_DSYNC write of the blocks from the last partial one written to the end of
  // the data, the rest of the last block fill; it returns once the blocks are on the disk. These
  // blocks never enter the page cache, so unlike fdatasync this write waits for no one else's
  // dirty pages (the filler's steps are in the same file), and it is one request to the disk.
  IOStatus write_tail() {
    if (written_ == end_) return IOStatus::OK();
    const uint64_t write_end = block_ceil(end_);
    const size_t used = static_cast<size_t>(end_ - tail_start_);
    const size_t length = static_cast<size_t>(write_end - tail_start_);
    std::memset(tail_.get() + used, kWalFillByte, length - used);
    filler_->reserve_through(end_, write_end);
    for (size_t done = 0; done < length;) {
      ssize_t w = ::pwrite(direct_fd_, tail_.get() + done, length - done,
                           static_cast<off_t>(tail_start_ + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return write_error("WAL write", errno);
      if (w == 0) return write_error("WAL write", EIO);
      done += static_cast<size_t>(w);
    }
    written_ = end_;
    filler_->wrote_through(end_);
    const uint64_t keep_from = block_floor(end_);  // the partial block is written again next time
    if (keep_from > tail_start_) {
      std::memmove(tail_.get(), tail_.get() + (keep_from - tail_start_),
                   static_cast<size_t>(end_ - keep_from));
      tail_start_ = keep_from;
    }
    return IOStatus::OK();
  }

  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };

  std::shared_ptr<Filler> filler_;
  const int direct_fd_;
  std::mutex direct_mu_;  // RocksDB may sync from another thread than the one appending
  std::unique_ptr<char, FreeDeleter> tail_;  // file bytes [tail_start_, end_), block-aligned
  size_t capacity_ = 0;
  uint64_t tail_start_ = 0;  // a block boundary
  uint64_t end_ = 0;         // the data's end
  uint64_t written_ = 0;     // data on disk up to here
};

// The newest WAL as a reader must see it while it is written: its data, not the fill after it.
// RocksDB reads it so (a checkpoint reads its first record, then copies it), and would take the
// fill for a corrupt record.
class DataOnlyFile : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  DataOnlyFile(std::unique_ptr<rocksdb::FSSequentialFile> file, uint64_t size)
      : FSSequentialFileOwnerWrapper(std::move(file)), left_(size) {}

  IOStatus Read(size_t n, const IOOptions& options, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    IOStatus s = target()->Read(static_cast<size_t>(std::min<uint64_t>(n, left_)), options, result,
                                scratch, dbg);
    if (s.ok()) left_ -= result->size();
    return s;
  }
  IOStatus Skip(uint64_t n) override {
    n = std::min(n, left_);
    IOStatus s = target()->Skip(n);
    if (s.ok()) left_ -= n;
    return s;
  }

 private:
  uint64_t left_;
};

class PrefilledWalFileSystem : public rocksdb::FileSystemWrapper {
 public:
  PrefilledWalFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                         const PrefilledWalOptions& options)
      : FileSystemWrapper(std::move(base)),
        options_(options),
        directory_(std::filesystem::path(options.directory).lexically_normal()) {}

  static const char* kClassName() { return "ticketd.PrefilledWalFileSystem"; }
  const char* Name() const override { return kClassName(); }

  IOStatus NewSequentialFile(const std::string& name, const FileOptions& file_options,
                             std::unique_ptr<rocksdb::FSSequentialFile>* result,
                             IODebugContext* dbg) override {
    IOStatus s = target()->NewSequentialFile(name, file_options, result, dbg);
    if (auto limit = s.ok() ? read_limit(name) : std::nullopt) {
      *result = std::make_unique<DataOnlyFile>(std::move(*result), *limit);
    }
    return s;
  }
  IOStatus GetFileSize(const std::string& name, const IOOptions& options, uint64_t* size,
                       IODebugContext* dbg) override {
    IOStatus s = target()->GetFileSize(name, options, size, dbg);
    if (auto limit = s.ok() ? read_limit(name) : std::nullopt) *size = std::min(*size, *limit);
    return s;
  }

  IOStatus NewWritableFile(const std::string& name, const FileOptions& file_options,
                           std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) override {
    if (!is_wal(name) || !in_directory(name)) {
      return target()->NewWritableFile(name, file_options, result, dbg);
    }
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
    const int direct_fd = options_.direct_writes ? open_direct(name) : -1;
    auto filler = std::make_shared<Filler>(fd, options_);
    newest_ = filler;
    newest_name_ = name;
    *result = std::make_unique<PrefilledWalFile>(std::move(file), std::move(filler), direct_fd);
    return IOStatus::OK();
  }

 private:
  // The data of the newest WAL while it is written, when `name` is that file.
  std::optional<uint64_t> read_limit(const std::string& name) {
    if (!is_wal(name)) return std::nullopt;
    std::shared_ptr<Filler> filler;
    {
      std::lock_guard lk(mu_);
      if (name != newest_name_) return std::nullopt;
      filler = newest_.lock();
    }
    return filler ? filler->read_limit() : std::nullopt;
  }

  bool in_directory(const std::string& name) const {
    return directory_.empty() ||
           std::filesystem::path(name).parent_path().lexically_normal() == directory_;
  }

  const PrefilledWalOptions options_;
  const std::filesystem::path directory_;
  std::mutex mu_;
  std::weak_ptr<Filler> newest_;
  std::string newest_name_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewPrefilledWalFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, const PrefilledWalOptions& options) {
  return std::make_shared<PrefilledWalFileSystem>(std::move(base), options);
}

}  // namespace ticketd::storage
