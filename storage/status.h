#pragma once
// Explicit results, RocksDB style: nothing in storage/ throws across its interface.
#include <string>
#include <utility>

namespace ticketd::storage {

class Status {
 public:
  enum class Code {
    kOk,
    kConflict,  // expected version did not match
    kNotFound,
    kInvalidArgument,  // the request itself is wrong; retrying cannot help
    kBusy,             // the append queue is full; retry later
    kIOError,          // the disk failed (full, gone); nothing of the request was acknowledged
    kCorruption,       // stored data does not verify
    kShuttingDown,
  };

  Status() = default;
  static Status Ok() { return {}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status ShuttingDown(std::string m) { return {Code::kShuttingDown, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace ticketd::storage
