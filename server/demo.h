#pragma once
// Demo mode: loads the reference application (../shared/MISSION.md) from its definition documents
// into an empty log — users, form, flow, rules — through the same decisions an administrator's
// requests go through.
#include <string>
#include <vector>

#include "projections/read_model.h"
#include "storage/event_log.h"

namespace ticketd::server {

struct DemoLogin {
  std::string user;
  std::string name;
  std::string roles;
  std::string password;
};

// Loads what is missing (an already loaded application is left alone) and returns the demo logins.
// False with a message when a document cannot be read or is refused.
bool load_reference_app(const std::string& dir, storage::EventLog& log,
                        projections::ReadModel& model, std::vector<DemoLogin>* logins,
                        std::string* error);

}  // namespace ticketd::server
