#pragma once
// The CPU time another process's threads have used, by thread name, read from Linux's
// /proc/<pid>/task/*/stat: ticketd names its threads (http-io, log-writer, log-indexer, ...), so
// a load run can say where the server's CPU went per request without a profiler.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace ticketd::tools {

// One /proc/<pid>/task/<tid>/stat line: the thread's name (which may hold spaces and
// parentheses: it ends at the line's last ')') and its user plus system time in clock ticks.
// False if the line is not one.
bool parse_task_stat(std::string_view line, std::string* name, uint64_t* ticks);

// Thread name -> CPU seconds, summed over the process's threads of that name. False, with a
// message, if the process cannot be read (gone, not ours, or not Linux).
bool thread_cpu_seconds(int pid, std::map<std::string, double>* out, std::string* error);

}  // namespace ticketd::tools
