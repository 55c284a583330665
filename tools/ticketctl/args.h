#pragma once
// "--name value" and "--flag" command-line options for ticketctl's verbs.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/event_log.h"

namespace ticketd::tools {

class Args {
 public:
  // Parses argv[first..]: `options` take a value, `flags` none; any other name is an error (a
  // misspelt --strem would otherwise dump every stream). Returns an error text or "".
  std::string parse(int argc, char** argv, int first, const std::vector<std::string>& options,
                    const std::vector<std::string>& flags);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // A whole number >= 0; std::nullopt (and `error` set) when the text is not one.
  std::optional<uint64_t> number(const std::string& name, uint64_t fallback,
                                 std::string* error) const;

 private:
  std::map<std::string, std::string> values_;
};

// Opens <--data-dir>/log (read-only unless a verb writes). Returns 0, or the exit code after
// printing why not.
int open_log(const Args& args, bool read_only, std::unique_ptr<storage::EventLog>* log);

}  // namespace ticketd::tools
