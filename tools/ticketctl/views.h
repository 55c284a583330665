#pragma once
#include "tools/ticketctl/args.h"

namespace ticketd::tools {

// ticketctl dump-views: the read model (snapshot + the log's tail) as deterministic JSON lines.
int dump_views(const Args& args);
// ticketctl rebuild: replays the whole log into a fresh read model and stores it as the snapshot.
int rebuild(const Args& args);
// ticketctl rebuild-reports: every report recomputed from the log (up to --until P) as JSON lines.
int rebuild_reports(const Args& args);
// ticketctl replay: one ticket's history as a readable timeline (who, when, what changed).
int replay_ticket(const Args& args);

}  // namespace ticketd::tools
