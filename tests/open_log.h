#pragma once
// Opens an EventLog for a test, failing the test (not crashing it) when it cannot.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "storage/event_log.h"

namespace ticketd::testing {

inline std::unique_ptr<storage::EventLog> open_log(const std::string& path,
                                                   bool read_only = false) {
  storage::EventLogOptions options;
  options.path = path;
  options.read_only = read_only;
  std::unique_ptr<storage::EventLog> log;
  storage::Status s = storage::EventLog::Open(options, &log);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return log;
}

}  // namespace ticketd::testing
