// SPDX-License-Identifier: MIT
// The demo: many concurrent requests on a small thread pool. Each request has its own request id,
// user and policy flags (seed 000's ticket example: "create the PR as a draft", "PR creation
// blocked"), set once at the request boundary and read deep inside "tools" that take no context
// parameter, on whichever pool thread runs them. Work reaches the pool through
// ucm::ContextFrame::bind. The same program with a process-global singleton shows what goes
// wrong without ucm: requests read each other's flags. Exits 0 when ucm's run saw no leak.
#include <ucm/ucm.hpp>

#include "thread_pool.hpp"

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---- the request-scoped context ---------------------------------------------------------------
struct PolicyFlags {
  bool draft_pr = false;
  bool block_pr = false;
};

inline ucm::ContextVariable<int> request_id;
inline ucm::ContextVariable<std::string> user;
// Outside any request, legacy code paths fall back to this default (the old global's value).
inline ucm::ContextVariable<PolicyFlags> policy{PolicyFlags{}};

// What each request expects to see, derived from its number.
std::string user_of(int id) { return "user-" + std::to_string(id % 7); }
PolicyFlags policy_of(int id) { return {id % 2 == 0, id % 5 == 0}; }

// ---- "tools": deep in the call tree, no context parameter --------------------------------------
bool matches_own_request(int expected) {
  const PolicyFlags& flags = *policy.get();
  const PolicyFlags want = policy_of(expected);
  return request_id.get() != nullptr && *request_id.get() == expected && user.get() != nullptr &&
         *user.get() == user_of(expected) && flags.draft_pr == want.draft_pr &&
         flags.block_pr == want.block_pr;
}

// ---- the same program with a process-global singleton ------------------------------------------
// Atomic so the demo is free of data races; the bug it shows is logical, not a race.
std::atomic<int> global_request{-1};

struct Counters {
  std::atomic<int> tasks{0};
  std::atomic<int> wrong{0};
  std::atomic<int> done{0};
};

void wait_for(const Counters& c, int total) {
  while (c.done.load() < total) std::this_thread::yield();
}

}  // namespace

int main() {
  constexpr int front_threads = 4;
  constexpr int requests_per_thread = 250;
  constexpr int subtasks = 4;
  constexpr int total = front_threads * requests_per_thread * subtasks;
  example::ThreadPool pool(3);

  // With ucm: set the context once at the boundary; bind work handed to the pool.
  Counters with_ucm;
  {
    std::vector<std::thread> front;
    for (int t = 0; t < front_threads; ++t) {
      front.emplace_back([&, t] {
        for (int r = 0; r < requests_per_thread; ++r) {
          const int id = t * requests_per_thread + r;
          ucm::with(request_id, id).with(user, user_of(id)).with(policy, policy_of(id)).run([&] {
            for (int s = 0; s < subtasks; ++s) {
              pool.post(ucm::ContextFrame::bind([&, id] {
                ++with_ucm.tasks;
                if (!matches_own_request(id)) ++with_ucm.wrong;
                ++with_ucm.done;
              }));
            }
          });
        }
      });
    }
    for (auto& f : front) f.join();
    wait_for(with_ucm, total);
  }

  // With a process-global singleton: each request overwrites the global at its boundary.
  Counters with_global;
  {
    std::vector<std::thread> front;
    for (int t = 0; t < front_threads; ++t) {
      front.emplace_back([&, t] {
        for (int r = 0; r < requests_per_thread; ++r) {
          const int id = t * requests_per_thread + r;
          global_request.store(id);
          for (int s = 0; s < subtasks; ++s) {
            pool.post([&, id] {
              ++with_global.tasks;
              if (global_request.load() != id) ++with_global.wrong;
              ++with_global.done;
            });
          }
        }
      });
    }
    for (auto& f : front) f.join();
    wait_for(with_global, total);
  }

  // A legacy path outside any request reads the default policy, and no request's values.
  const bool outside_clean = request_id.get() == nullptr && !policy.is_bound() &&
                             !policy.get()->draft_pr && !policy.get()->block_pr;

  std::printf("%d requests x %d pool tasks on 3 pool threads, from %d front-end threads\n",
              front_threads * requests_per_thread, subtasks, front_threads);
  std::printf("  ucm::ContextVariable     : %5d tasks, %5d saw another request's values\n",
              with_ucm.tasks.load(), with_ucm.wrong.load());
  std::printf("  process-global singleton : %5d tasks, %5d saw another request's values\n",
              with_global.tasks.load(), with_global.wrong.load());
  std::printf("  outside any request      : %s\n",
              outside_clean ? "no request values, default policy" : "LEAKED request values");
  const bool ok = with_ucm.wrong == 0 && with_ucm.tasks == total && outside_clean;
  std::printf("%s\n", ok ? "isolation holds" : "ISOLATION BROKEN");
  return ok ? 0 : 1;
}
