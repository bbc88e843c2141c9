// SPDX-License-Identifier: MIT
// A user's program: the umbrella header and the quick start, checked by exit code.
#include <ucm/ucm.hpp>

#include <cstdio>
#include <string>
#include <thread>

inline ucm::ContextVariable<std::string> request_id;

int main() {
  std::string seen;
  request_id.run("r-1", [&] {
    auto task = ucm::ContextFrame::bind([&] { seen = *request_id.get(); });
    std::thread(task).join();
  });
  const bool ok = seen == "r-1" && request_id.get() == nullptr;
  std::puts(ok ? "consumer: ok" : "consumer: FAILED");
  return ok ? 0 : 1;
}
