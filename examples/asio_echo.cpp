// SPDX-License-Identifier: MIT
// An Asio TCP echo server on 127.0.0.1 (port chosen by the OS), served by an io_context that three
// threads run, with four clients in the same process talking to it at once.
//
// Each connection is one request. The server gives it a request id when it accepts it and learns
// the user from the first line ("HELLO alice"); both go into ucm::ContextVariables with a
// ContextVariableScope, once. From then on every log line of that connection, written by its
// coroutine (a ucm::Task awaiting Asio through ucm::asio::use_task: the scopes span every
// co_await) and by its callbacks (completion handlers wrapped in ucm::asio::propagate), carries
// that request id and user, whichever I/O thread runs it, and never another connection's. The log
// function takes no context parameter: it reads the variables.
//
// The program checks this itself (every message names its sender, so each log line can be
// compared with the user its context claims) and exits 0 when it holds, 1 otherwise.
#include <ucm/asio.hpp>
#include <ucm/task.hpp>
#include <ucm/ucm.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using tcp = asio::ip::tcp;
using ucm::asio::use_task;

ucm::ContextVariable<std::string> request_id;
ucm::ContextVariable<std::string> user;

// ---- logging: reads the context, never takes it as a parameter ------------------------------
struct LogLine {
  std::string request_id;
  std::string user;
  std::string text;
};
std::mutex log_mutex;
std::vector<LogLine> log_lines;

thread_local const char* thread_name = "main";

void log(const std::string& text) {
  LogLine line{request_id.value_or("?"), user.value_or("?"), text};
  std::lock_guard lock(log_mutex);
  std::printf("%-4s  [%-13s user=%-5s] %s\n", thread_name, line.request_id.c_str(),
              line.user.c_str(), text.c_str());
  log_lines.push_back(std::move(line));
}

/// Reads one line (without its '\n') into `line`; false at end of stream.
ucm::Task<bool> read_line(tcp::socket& socket, std::string& buffer, std::string& line) {
  try {
    const std::size_t n =
        co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', use_task);
    line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    co_return true;
  } catch (const std::system_error& e) {
    if (e.code() != asio::error::eof) throw;
  }
  co_return false;
}

// ---- the server: one Task per connection ------------------------------------------------------
ucm::Task<> session(tcp::acceptor& acceptor, int number) {
  tcp::socket socket = co_await acceptor.async_accept(use_task);
  ucm::ContextVariableScope id(request_id, "req-" + std::to_string(number));
  std::string buffer;
  std::string hello;
  if (!co_await read_line(socket, buffer, hello) || hello.rfind("HELLO ", 0) != 0) co_return;
  ucm::ContextVariableScope who(user, hello.substr(6));
  log("connected");
  std::string line;
  while (co_await read_line(socket, buffer, line)) {
    log("received '" + line + "'");
    // A callback-style side job: its handler runs later on some I/O thread, in this context.
    auto audit =
        std::make_shared<asio::steady_timer>(socket.get_executor(), std::chrono::milliseconds(2));
    audit->async_wait(
        ucm::asio::propagate([audit, line](std::error_code) { log("audited '" + line + "'"); }));
    co_await asio::async_write(socket, asio::buffer(line + "\n"), use_task);
    log("echoed");
  }
  log("closed");
}

ucm::Task<> server(tcp::acceptor& acceptor, int connections) {
  std::vector<ucm::Task<>> sessions;
  for (int i = 0; i < connections; ++i) sessions.push_back(session(acceptor, i));
  co_await ucm::when_all(std::move(sessions));
}

// ---- the clients -------------------------------------------------------------------------------
ucm::Task<> client(asio::io_context& io, tcp::endpoint server_endpoint, std::string name) {
  ucm::ContextVariableScope who(user, name);
  ucm::ContextVariableScope id(request_id, "client-" + name);
  tcp::socket socket(io);
  co_await socket.async_connect(server_endpoint, use_task);
  log("connected");
  co_await asio::async_write(socket, asio::buffer("HELLO " + name + "\n"), use_task);
  std::string buffer;
  asio::steady_timer pause(io);
  for (int k = 1; k <= 3; ++k) {
    pause.expires_after(std::chrono::milliseconds(1));  // let the clients interleave
    co_await pause.async_wait(use_task);
    const std::string message = name + ": message " + std::to_string(k);
    co_await asio::async_write(socket, asio::buffer(message + "\n"), use_task);
    std::string echo;
    if (!co_await read_line(socket, buffer, echo) || echo != message)
      log("bad echo '" + echo + "'");
    log("got back '" + echo + "'");
  }
  socket.shutdown(tcp::socket::shutdown_send);  // the server's session ends
  log("done");
}

/// The program's own check: every line has a context, its user is the one the message names, a
/// request id is never seen with two users, and every connection logged all it should.
bool check(const std::vector<std::string>& names) {
  std::map<std::string, std::string> user_of_request;
  std::map<std::string, int> lines_of_request;
  bool ok = true;
  for (const LogLine& line : log_lines) {
    if (line.request_id == "?" || line.user == "?") ok = false;
    const auto quote = line.text.find('\'');
    if (quote != std::string::npos &&
        line.text.compare(quote + 1, line.user.size() + 1, line.user + ":") != 0) {
      std::printf("MISMATCH: %s seen by %s/%s\n", line.text.c_str(), line.request_id.c_str(),
                  line.user.c_str());
      ok = false;
    }
    auto [it, inserted] = user_of_request.emplace(line.request_id, line.user);
    if (!inserted && it->second != line.user) ok = false;
    ++lines_of_request[line.request_id];
  }
  int server_sessions = 0;
  for (const auto& [id, count] : lines_of_request) {
    if (id.rfind("req-", 0) == 0) {
      ++server_sessions;
      if (count != 11) ok = false;  // connected, 3 x (received, audited, echoed), closed
    } else if (count != 5) {        // connected, 3 x got back, done
      ok = false;
    }
  }
  return ok && server_sessions == static_cast<int>(names.size()) &&
         user_of_request.size() == 2 * names.size();
}

}  // namespace

int main() {
  // If anything went wrong and a task never completed, fail instead of hanging.
  std::mutex watchdog_mutex;
  std::condition_variable watchdog_cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(watchdog_mutex);
    if (!watchdog_cv.wait_for(lock, std::chrono::seconds(20), [&] { return finished; })) {
      std::printf("asio_echo: timed out\n");
      std::_Exit(1);
    }
  });

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (const char* name : {"io-1", "io-2", "io-3"}) {
    threads.emplace_back([&io, name] {
      thread_name = name;
      io.run();
    });
  }

  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::vector<std::string> names{"alice", "bob", "carol", "dave"};
  std::vector<ucm::Task<>> clients;
  for (const std::string& name : names)
    clients.push_back(client(io, acceptor.local_endpoint(), name));
  ucm::sync_wait(ucm::when_all(server(acceptor, static_cast<int>(names.size())),
                               ucm::when_all(std::move(clients))));

  work.reset();  // lets the I/O threads finish the audit callbacks, then return
  for (auto& t : threads) t.join();
  {
    std::lock_guard lock(watchdog_mutex);
    finished = true;
  }
  watchdog_cv.notify_one();
  watchdog.join();

  const bool ok = check(names) && request_id.get() == nullptr && user.get() == nullptr;
  std::printf("%s: %zu log lines, each with its own connection's request id and user\n",
              ok ? "OK" : "FAILED", log_lines.size());
  return ok ? 0 : 1;
}
