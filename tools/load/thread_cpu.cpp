#include "tools/load/thread_cpu.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>

namespace ticketd::tools {

bool parse_task_stat(std::string_view line, std::string* name, uint64_t* ticks) {
  // "<tid> (<comm>) <state> <ppid> ...": utime and stime are the 14th and 15th fields, the
  // 12th and 13th after the name's closing parenthesis.
  const size_t open = line.find('(');
  const size_t close = line.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return false;
  }
  std::string_view rest = line.substr(close + 1);
  uint64_t times[2] = {};  // utime, stime
  for (int field = 0; field < 13; ++field) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return false;
    rest.remove_prefix(start);
    const size_t end = std::min(rest.find(' '), rest.size());
    if (field >= 11) {
      auto [p, ec] = std::from_chars(rest.data(), rest.data() + end, times[field - 11]);
      if (ec != std::errc() || p != rest.data() + end) return false;
    }
    rest.remove_prefix(end);
  }
  *name = std::string(line.substr(open + 1, close - open - 1));
  *ticks = times[0] + times[1];
  return true;
}

bool thread_cpu_seconds(int pid, std::map<std::string, double>* out, std::string* error) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  std::filesystem::directory_iterator it(tasks, ec);
  if (ec) {
    *error = "cannot read " + tasks.string() + ": " + ec.message();
    return false;
  }
  const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  out->clear();
  // Stepped with an error code: the process may end while its threads are read.
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    // A thread that ends while the directory is read is skipped, not an error.
    std::ifstream in(it->path() / "stat");
    std::string line, name;
    uint64_t ticks = 0;
    if (!std::getline(in, line) || !parse_task_stat(line, &name, &ticks)) continue;
    (*out)[name] += static_cast<double>(ticks) * tick;
  }
  if (out->empty()) {
    *error = "no thread of process " + std::to_string(pid) + " could be read";
    return false;
  }
  return true;
}

}  // namespace ticketd::tools
