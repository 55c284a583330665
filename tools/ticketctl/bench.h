#pragma once
#include "tools/ticketctl/args.h"

namespace ticketd::tools {

// ticketctl bench append: see usage in main.cpp. Returns the process exit code.
int bench_append(const Args& args);
// ticketctl bench seed: see usage in main.cpp.
int bench_seed(const Args& args);
// ticketctl bench pages: see usage in main.cpp.
int bench_pages(const Args& args);

}  // namespace ticketd::tools
