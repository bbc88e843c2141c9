// SPDX-License-Identifier: MIT
// A user's program with the Asio integration and coroutines: a Task awaits a timer on an I/O
// thread and still sees its request id. Checked by exit code.
#include <ucm/asio.hpp>
#include <ucm/task.hpp>
#include <ucm/ucm.hpp>

#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

inline ucm::ContextVariable<std::string> request_id;

ucm::Task<std::string> wait_and_read(asio::io_context& io) {
  asio::steady_timer timer(io, std::chrono::milliseconds(5));
  co_await timer.async_wait(ucm::asio::use_task);
  co_return request_id.value_or("none");
}

int main() {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  const std::string seen = request_id.run("r-2", [&] { return ucm::sync_wait(wait_and_read(io)); });
  work.reset();
  runner.join();
  const bool ok = seen == "r-2";
  std::puts(ok ? "asio consumer: ok" : "asio consumer: FAILED");
  return ok ? 0 : 1;
}
