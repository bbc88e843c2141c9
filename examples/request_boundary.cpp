// SPDX-License-Identifier: MIT
// A request boundary with several contexts at once (seed 003): trace, user, tenant and per-ticket
// policy flags are registered once with a ucm::ContextManager, each built from the incoming
// request, and set around every handler by one run_all (one frame, one allocation). Concurrent
// tickets each see only their own draft/blocked flags (seed 000's ticket example), a builder
// reads a context registered before it, and a handler updates a record-style context for the
// rest of its window with var.update.
#include <ucm/manager.hpp>
#include <ucm/ucm.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// What the boundary has: an HTTP-style request.
struct HttpRequest {
  std::string path;
  std::map<std::string, std::string> headers;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct User {
  std::string name;
  std::string role;
};
struct Tenant {
  std::string id;
  std::string database;
};
struct PolicyFlags {
  bool draft_pr = false;
  bool block_pr = false;
  std::string reason;
};

inline ucm::ContextVariable<std::string> trace_id;
inline ucm::ContextVariable<User> user;
inline ucm::ContextVariable<Tenant> tenant;
inline ucm::ContextVariable<PolicyFlags> policy{PolicyFlags{}};

std::mutex log_mutex;
void log(const char* what) {
  // Every log line carries the request's context without being passed it.
  std::lock_guard lock(log_mutex);
  std::printf("[trace=%s user=%s tenant=%s draft=%d blocked=%d] %s\n", trace_id.get()->c_str(),
              user.get()->name.c_str(), tenant.get()->id.c_str(), policy.get()->draft_pr,
              policy.get()->block_pr, what);
}

// A "tool" deep in the handler: no context parameter, reads the ticket's own flags.
bool create_pull_request() {
  const PolicyFlags& flags = *policy.get();
  if (flags.block_pr) {
    log(("PR blocked: " + flags.reason).c_str());
    return false;
  }
  log(flags.draft_pr ? "PR created as draft" : "PR created");
  return true;
}

}  // namespace

int main() {
  ucm::ContextManager<HttpRequest> contexts;
  contexts
      .register_context("trace", trace_id,
                        [](const HttpRequest& r) { return r.header("traceparent").substr(3, 8); })
      .register_context("user", user,
                        [](const HttpRequest& r) {
                          return User{r.header("x-user"), "reader"};
                        })
      // The tenant's builder reads the user built before it: register dependencies first.
      .register_context("tenant", tenant,
                        [](const HttpRequest& r, const ucm::BuildView& built) {
                          const std::string id = r.header("x-tenant");
                          return Tenant{id, "db-" + id + "-for-" + built.get(user)->name};
                        })
      .register_context("policy", policy, [](const HttpRequest& r) {
        PolicyFlags flags;
        flags.draft_pr = r.path.find("/draft") != std::string::npos;
        return flags;
      });

  const std::vector<HttpRequest> tickets = {
      {"/tickets/A/draft",
       {{"traceparent", "00-aaaaaaaa"}, {"x-user", "ada"}, {"x-tenant", "acme"}}},
      {"/tickets/B", {{"traceparent", "00-bbbbbbbb"}, {"x-user", "bob"}, {"x-tenant", "bolt"}}},
      {"/tickets/C", {{"traceparent", "00-cccccccc"}, {"x-user", "cy"}, {"x-tenant", "acme"}}},
  };

  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (const HttpRequest& ticket : tickets) {
    workers.emplace_back([&] {
      contexts.run_all(ticket, [&] {
        log(("handling " + ticket.path).c_str());
        // Ticket C finds its blast radius too high: block PR creation for this ticket only.
        if (ticket.path == "/tickets/C") {
          policy.update([](PolicyFlags& f) {
            f.block_pr = true;
            f.reason = "blast radius too high";
          });
          user.update([](User& u) { u.role = "reviewer"; });
        }
        const bool created = create_pull_request();
        const bool expect_created = ticket.path != "/tickets/C";
        const bool expect_draft = ticket.path == "/tickets/A/draft";
        if (created != expect_created || policy.get()->draft_pr != expect_draft ||
            user.get()->name != ticket.header("x-user")) {
          ++wrong;
        }
      });
    });
  }
  for (auto& w : workers) w.join();

  // Outside every request: the default policy, no request's values.
  const bool clean = trace_id.get() == nullptr && !policy.get()->block_pr && !policy.is_bound();
  std::printf("%s\n", wrong == 0 && clean ? "every ticket saw only its own context"
                                          : "CONTEXT LEAKED BETWEEN TICKETS");
  return wrong == 0 && clean ? 0 : 1;
}
