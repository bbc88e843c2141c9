// SPDX-License-Identifier: MIT
// A user's program with the Boost.Asio integration and Beast: a Task awaits a timer on an I/O
// thread and still sees its request id, then injects its trace into a Beast request and reads
// it back. Checked by exit code.
#include <ucm/boost_asio.hpp>
#include <ucm/propagation/beast.hpp>
#include <ucm/task.hpp>
#include <ucm/ucm.hpp>

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

inline ucm::ContextVariable<std::string> request_id;

ucm::Task<std::string> wait_and_read(boost::asio::io_context& io) {
  boost::asio::steady_timer timer(io, std::chrono::milliseconds(5));
  co_await timer.async_wait(ucm::boost_asio::use_task);
  co_return request_id.value_or("none");
}

int main() {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  const std::string seen = request_id.run("r-3", [&] { return ucm::sync_wait(wait_and_read(io)); });
  work.reset();
  runner.join();

  namespace http = boost::beast::http;
  http::request<http::empty_body> request{http::verb::get, "/", 11};
  const auto trace = ucm::w3c::TraceContext::new_trace();
  ucm::w3c::trace_context.run(trace, [&] { ucm::w3c::inject(request); });
  const auto* back = ucm::w3c::extract(ucm::ContextFrame{}, request).get(ucm::w3c::trace_context);

  const bool ok = seen == "r-3" && back != nullptr && *back == trace;
  std::puts(ok ? "boost.asio consumer: ok" : "boost.asio consumer: FAILED");
  return ok ? 0 : 1;
}
