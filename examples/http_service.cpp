// SPDX-License-Identifier: MIT
// Shows: a traced HTTP/1.1 service on Boost.Beast, on 127.0.0.1 with ports the OS picks, served by
// an io_context that four threads run. Every connection is a ucm::Task that awaits Beast through
// ucm::boost_asio::use_task, so the context survives every co_await, whichever thread resumes it.
//
// Two services in one process make one trace span two hops: `frontend` answers GET /work/<x> by
// calling `backend` (GET /inner/<x>) over HTTP. Each request boundary extracts traceparent,
// tracestate and baggage from the Beast request (ucm/propagation/beast.hpp), as a continuation of
// the caller, then builds the request's own contexts (its request id, the caller's span, its own
// span) into one frame with a ucm::ContextManager, run_all's equivalent for a coroutine. The
// frontend's outgoing request is filled by ucm::w3c::inject from the context. Every log line
// carries its service, request id and trace id, read from the context by `log`, which takes no
// context parameter.
//
// Graceful edges: a request with malformed W3C headers is served as a new trace (never
// rejected), a request Beast cannot parse gets a 400, and a client that disconnects mid-request
// (or before reading its response) leaves nothing behind: its session ends, and nothing of its
// context reaches a log line, another request or an I/O thread.
//
//   http_service            a short demonstration: a few requests, every log line printed
//   http_service --check    concurrent requests with known ids, malformed headers and clients
//                           that disconnect mid-request; checks what each hop saw and every log
//                           line; exits 1 on any mismatch (a test in CI, under ASan and TSan)
//   http_service --serve    serves until SIGINT or SIGTERM:  curl -H 'baggage: user=me'
//                           http://127.0.0.1:<port>/work/hello
#include <ucm/boost_asio.hpp>
#include <ucm/manager.hpp>
#include <ucm/propagation/beast.hpp>
#include <ucm/propagation/w3c.hpp>
#include <ucm/task.hpp>
#include <ucm/ucm.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using ucm::boost_asio::use_task;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using namespace std::chrono_literals;

// ---- the request's context ---------------------------------------------------------------------

ucm::ContextVariable<std::string> service_name;  // the service a line comes from (or "client")
ucm::ContextVariable<std::string> request_id;    // x-request-id, or one made at the boundary
ucm::ContextVariable<std::string> caller_span;   // the caller's span id, "-" for a new trace
// ucm::w3c::trace_context holds the request's own span, ucm::w3c::baggage what the caller sent.

std::string text(beast::string_view view) { return std::string(view.data(), view.size()); }

// ---- logging: reads the context, never takes it as a parameter --------------------------------

struct LogLine {
  std::string service;
  std::string request;
  std::string trace;
  std::string text;
};

std::mutex log_mutex;
std::vector<LogLine> log_lines;
bool print_log = true;

void log(std::string message) {
  const ucm::w3c::TraceContext* span = ucm::w3c::trace_context.get();
  LogLine line{service_name.value_or("main"), request_id.value_or("-"),
               span != nullptr ? span->trace_id.to_hex() : "-", std::move(message)};
  std::lock_guard lock(log_mutex);
  if (print_log) {
    std::printf("%-8s %-16s trace=%-8.8s %s\n", line.service.c_str(), line.request.c_str(),
                line.trace.c_str(), line.text.c_str());
  }
  log_lines.push_back(std::move(line));
}

// ---- the request boundary ----------------------------------------------------------------------

/// What the boundary builds the request's contexts from.
struct Incoming {
  const Request& request;
};

std::atomic<int> generated_ids{0};

/// A request id as a client may send it: 1 to 64 of [A-Za-z0-9._-].
bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// The request's contexts, built at each request boundary into one frame. Builders run in this
/// order in a window of what `extract` found, so the span builder reads the caller's span.
ucm::ContextManager<Incoming>& request_contexts() {
  static ucm::ContextManager<Incoming> contexts;
  static const bool registered = [] {
    contexts
        .register_context("request_id", request_id,
                          [](const Incoming& in) {
                            const std::string id = text(in.request["x-request-id"]);
                            return valid_request_id(id) ? id
                                                        : "gen-" + std::to_string(++generated_ids);
                          })
        .register_context("caller_span", caller_span,
                          [](const Incoming&) {
                            const ucm::w3c::TraceContext* caller = ucm::w3c::trace_context.get();
                            return caller != nullptr ? caller->parent_id.to_hex() : "-";
                          })
        .register_context("span", ucm::w3c::trace_context, [](const Incoming&) {
          const ucm::w3c::TraceContext* caller = ucm::w3c::trace_context.get();
          return caller != nullptr ? caller->child() : ucm::w3c::TraceContext::new_trace();
        });
    return true;
  }();
  (void)registered;
  return contexts;
}

/// What this hop sees of its request, from the context: one line of a response body.
std::string describe() {
  const ucm::w3c::TraceContext* span = ucm::w3c::trace_context.get();
  const ucm::w3c::Baggage* baggage = ucm::w3c::baggage.get();
  const std::string* user = baggage != nullptr ? baggage->get("user") : nullptr;
  return service_name.value_or("?") + " request=" + request_id.value_or("-") +
         " trace=" + (span != nullptr ? span->trace_id.to_hex() : "-") +
         " span=" + (span != nullptr ? span->parent_id.to_hex() : "-") +
         " parent=" + caller_span.value_or("-") + " user=" + (user != nullptr ? *user : "-") + "\n";
}

// ---- coroutines that run on their own ----------------------------------------------------------

/// Counts the Tasks started with `detach`, so that shutdown can wait until none is left.
class Sessions {
 public:
  void enter() {
    std::lock_guard lock(mutex_);
    ++live_;
  }
  void leave() {
    std::lock_guard lock(mutex_);
    if (--live_ == 0) idle_.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return live_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int live_ = 0;
};

/// A fire-and-forget coroutine type: it starts at once and frees itself when it ends.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the Tasks catch their own
  };
};

/// Runs `task` on its own, from here (it starts in the caller's context), until it ends.
Detached detach(ucm::Task<> task, Sessions& sessions) {
  sessions.enter();
  co_await std::move(task);
  sessions.leave();
}

// ---- the servers -------------------------------------------------------------------------------

class Server;
using Handler = ucm::Task<Response> (*)(Server& server, const Request& request);

/// An HTTP/1.1 server on 127.0.0.1: an accept loop and one session Task per connection, each
/// connection on a strand of its own.
class Server {
 public:
  Server(net::io_context& io, std::string name, Handler handler, Sessions& sessions)
      : io_(io),
        name_(std::move(name)),
        handler_(handler),
        sessions_(sessions),
        acceptor_(net::make_strand(io), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {}

  [[nodiscard]] tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
  [[nodiscard]] net::io_context& io() const { return io_; }
  [[nodiscard]] const tcp::endpoint& backend() const { return backend_; }
  void set_backend(tcp::endpoint backend) { backend_ = std::move(backend); }

  void start() { detach(accept_loop(), sessions_); }

  /// Stops accepting: the accept loop ends; open connections end when their clients close.
  void stop() {
    net::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
  }

 private:
  ucm::Task<> accept_loop() {
    // Every session started here inherits the service's name.
    ucm::ContextVariableScope name(service_name, name_);
    log("listening on 127.0.0.1:" + std::to_string(endpoint().port()));
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(net::make_strand(io_), net::redirect_error(use_task, ec));
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) break;
      if (ec) continue;
      detach(session(beast::tcp_stream(std::move(socket))), sessions_);
    }
    log("stopped accepting");
  }

  /// One connection: requests one after another (HTTP/1.1 keep-alive), each handled inside its
  /// own boundary, so nothing of one reaches the next or the code after the loop.
  ucm::Task<> session(beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    for (;;) {
      Request request;
      boost::system::error_code ec;
      stream.expires_after(30s);  // a client that stops sending is dropped
      co_await http::async_read(stream, buffer, request, net::redirect_error(use_task, ec));
      if (ec == http::error::end_of_stream) break;  // closed between requests
      if (ec == beast::error::timeout && buffer.size() == 0) {
        log("idle connection closed");
        break;
      }
      // Beast's parse errors (all in its http category; a message cut short is not one).
      if (ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::partial_message) {
        log("malformed HTTP (" + ec.message() + "): 400");
        Response bad{http::status::bad_request, 11};
        bad.set(http::field::connection, "close");
        bad.body() = "bad request\n";
        bad.prepare_payload();
        co_await http::async_write(stream, bad, net::redirect_error(use_task, ec));
        break;
      }
      if (ec) {  // the client went mid-request (or timed out): nothing was started for it
        log("connection ended mid-request (" + ec.message() + ")");
        break;
      }
      const bool keep_alive = request.keep_alive();
      Response response = co_await serve(request);
      response.keep_alive(keep_alive);
      response.prepare_payload();
      co_await http::async_write(stream, response, net::redirect_error(use_task, ec));
      if (ec) {
        log("response not delivered (" + ec.message() + ")");
        break;
      }
      if (!keep_alive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  /// The request boundary, then the handler.
  ucm::Task<Response> serve(const Request& request) {
    // A continuation of the caller: the current frame plus what the W3C headers carry (a
    // malformed header is ignored, so such a request starts a new trace below).
    ucm::ContextFrameScope caller(ucm::w3c::extract(request));
    // The request's own contexts, built into one frame (what run_all does around a call; here
    // the scope spans the co_await of the handler).
    ucm::ContextFrameScope contexts(ucm::call_window, request_contexts().build(Incoming{request}));
    log("request " + text(request.method_string()) + " " + text(request.target()));
    Response response;
    try {
      response = co_await handler_(*this, request);
    } catch (const std::exception& e) {
      log(std::string("failed: ") + e.what());
      response = Response{http::status::internal_server_error, 11};
      response.body() = "failed\n";
    }
    response.set("x-request-id", request_id.value_or("-"));
    log("response " + std::to_string(response.result_int()));
    co_return response;
  }

  net::io_context& io_;
  std::string name_;
  Handler handler_;
  Sessions& sessions_;
  tcp::acceptor acceptor_;
  tcp::endpoint backend_;
};

/// An HTTP GET of `target` from `endpoint`, made in the current context: x-request-id and the
/// W3C headers come from it (inject), so the callee continues this trace.
ucm::Task<Response> http_get(net::io_context& io, const tcp::endpoint& endpoint,
                             std::string target) {
  beast::tcp_stream stream(net::make_strand(io));
  stream.expires_after(30s);
  co_await stream.async_connect(endpoint, use_task);
  Request outgoing{http::verb::get, target, 11};
  outgoing.set(http::field::host, "127.0.0.1");
  if (const std::string* id = request_id.get()) outgoing.set("x-request-id", *id);
  ucm::w3c::inject(outgoing);
  co_await http::async_write(stream, outgoing, use_task);
  beast::flat_buffer buffer;
  Response response;
  co_await http::async_read(stream, buffer, response, use_task);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return response;
}

/// The frontend's handler: calls the backend, then answers with what both hops saw.
ucm::Task<Response> frontend(Server& server, const Request& request) {
  const std::string target = text(request.target());
  const std::string item = target.substr(target.rfind('/') + 1);
  log("calling backend for " + target);
  Response inner = co_await http_get(server.io(), server.backend(), "/inner/" + item);
  log("backend answered " + std::to_string(inner.result_int()) + " for " + target);
  Response response{http::status::ok, 11};
  response.set(http::field::content_type, "text/plain");
  response.body() = describe() + inner.body();
  co_return response;
}

/// The backend's handler: a hop to another I/O thread, then what it saw.
ucm::Task<Response> backend(Server& server, const Request& request) {
  co_await net::post(server.io(), use_task);  // continue on any I/O thread
  log("inner work for " + text(request.target()));
  Response response{http::status::ok, 11};
  response.set(http::field::content_type, "text/plain");
  response.body() = describe();
  co_return response;
}

// ---- the built-in client -----------------------------------------------------------------------

std::mutex failure_mutex;
std::vector<std::string> failures;

void fail(std::string what) {
  std::lock_guard lock(failure_mutex);
  failures.push_back(std::move(what));
}

/// One hop's line of a response body: field -> value.
std::map<std::string, std::string> parse_hop(std::string_view line) {
  std::map<std::string, std::string> fields;
  std::size_t start = 0;
  bool first = true;
  while (start <= line.size()) {
    std::size_t end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    const std::string_view word = line.substr(start, end - start);
    if (first) {
      fields["hop"] = std::string(word);
      first = false;
    } else if (const std::size_t eq = word.find('='); eq != std::string_view::npos) {
      fields[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
    }
    start = end + 1;
  }
  return fields;
}

/// The two hops' lines of a frontend response.
std::optional<std::pair<std::map<std::string, std::string>, std::map<std::string, std::string>>>
parse_hops(const std::string& body) {
  const std::size_t newline = body.find('\n');
  if (newline == std::string::npos || !body.ends_with('\n')) return std::nullopt;
  auto front = parse_hop(std::string_view(body).substr(0, newline));
  auto back = parse_hop(std::string_view(body).substr(newline + 1, body.size() - newline - 2));
  if (front["hop"] != "frontend" || back["hop"] != "backend") return std::nullopt;
  return std::pair(std::move(front), std::move(back));
}

/// Checks what both hops saw of one request whose id, trace and user the client chose.
void check_known(const Response& response, const std::string& id,
                 const ucm::w3c::TraceContext& trace, const std::string& user) {
  const auto hops = parse_hops(response.body());
  if (response.result() != http::status::ok || !hops) {
    fail(id + ": bad response: " + response.body());
    return;
  }
  auto [front, back] = *hops;
  const std::string trace_id = trace.trace_id.to_hex();
  const bool ok = text(response["x-request-id"]) == id && front["request"] == id &&
                  back["request"] == id && front["trace"] == trace_id &&
                  back["trace"] == trace_id && front["parent"] == trace.parent_id.to_hex() &&
                  front["span"] != trace.parent_id.to_hex() && back["parent"] == front["span"] &&
                  back["span"] != front["span"] && front["user"] == user && back["user"] == user;
  if (!ok) fail(id + ": hops saw " + response.body());
}

/// Checks a request whose W3C headers were malformed: a new trace across both hops, a new id.
void check_new_trace(const Response& response, const std::string& what,
                     const std::string& expected_user) {
  const auto hops = parse_hops(response.body());
  if (response.result() != http::status::ok || !hops) {
    fail(what + ": bad response: " + response.body());
    return;
  }
  auto [front, back] = *hops;
  const bool ok = front["request"].starts_with("gen-") && back["request"] == front["request"] &&
                  text(response["x-request-id"]) == front["request"] &&
                  front["trace"].size() == 32 && back["trace"] == front["trace"] &&
                  front["parent"] == "-" && back["parent"] == front["span"] &&
                  front["user"] == expected_user && back["user"] == expected_user;
  if (!ok) fail(what + ": hops saw " + response.body());
}

/// Sends `request` on `stream` and reads the response.
ucm::Task<Response> exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                             Request request) {
  request.set(http::field::host, "127.0.0.1");
  request.prepare_payload();
  co_await http::async_write(stream, request, use_task);
  Response response;
  co_await http::async_read(stream, buffer, response, use_task);
  co_return response;
}

/// A keep-alive connection sending `count` requests with known ids, traces and users, each from
/// the client's own context; the last one is followed by half a request and a disconnect.
ucm::Task<> known_client(net::io_context& io, tcp::endpoint frontend_endpoint, int connection,
                         int count) {
  ucm::ContextVariableScope name(service_name, "client");
  beast::tcp_stream stream(net::make_strand(io));
  co_await stream.async_connect(frontend_endpoint, use_task);
  beast::flat_buffer buffer;
  for (int k = 0; k < count; ++k) {
    const std::string id = "req-" + std::to_string(connection) + "-" + std::to_string(k);
    const std::string user = "user-" + std::to_string(connection) + "-" + std::to_string(k);
    const ucm::w3c::TraceContext trace = ucm::w3c::TraceContext::new_trace();
    ucm::ContextFrameScope request_scope(
        ucm::call_window, ucm::with(request_id, id)
                              .with(ucm::w3c::trace_context, trace)
                              .with(ucm::w3c::baggage, ucm::w3c::Baggage{}.with("user", user))
                              .frame());
    Request request{http::verb::get, "/work/" + id, 11};
    request.set("x-request-id", id);
    ucm::w3c::inject(request);
    log("sending /work/" + id);
    const Response response = co_await exchange(stream, buffer, std::move(request));
    log("received " + std::to_string(response.result_int()) + " for /work/" + id);
    check_known(response, id, trace, user);
  }
  // Half a request, then gone: the session must end without a trace of it.
  const std::string half = "GET /work/half HTTP/1.1\r\nHost: 127.0.0.1\r\ntracepar";
  co_await net::async_write(stream, net::buffer(half), use_task);
  stream.close();
}

/// Requests with malformed W3C headers and ids, then what Beast cannot parse.
ucm::Task<> malformed_client(net::io_context& io, tcp::endpoint frontend_endpoint) {
  ucm::ContextVariableScope name(service_name, "client");
  beast::tcp_stream stream(net::make_strand(io));
  co_await stream.async_connect(frontend_endpoint, use_task);
  beast::flat_buffer buffer;
  struct Case {
    const char* what;
    std::vector<std::pair<const char*, std::string>> headers;
    const char* user;  // what both hops must see of the baggage
  };
  const std::vector<Case> cases{
      {"bad-traceparent",
       {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"baggage", "user=bob"},
        {"x-request-id", "has space"}},
       "bob"},
      {"garbage-headers",
       {{"traceparent", "garbage"},
        {"tracestate", ",,=,,"},
        {"baggage", "user=%zz;;="},
        {"x-request-id", std::string(100, 'x')}},
       "-"},
      {"two-traceparents",
       {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
       "-"},
      {"no-headers", {}, "-"},
  };
  for (const Case& c : cases) {
    Request request{http::verb::get, std::string("/work/") + c.what, 11};
    for (const auto& [name_text, value] : c.headers) request.insert(name_text, value);
    const Response response = co_await exchange(stream, buffer, std::move(request));
    check_new_trace(response, c.what, c.user);
  }
  stream.close();

  // Not HTTP at all: a 400, and the server goes on.
  beast::tcp_stream garbage(net::make_strand(io));
  co_await garbage.async_connect(frontend_endpoint, use_task);
  co_await net::async_write(garbage, net::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")), use_task);
  Response response;
  beast::flat_buffer garbage_buffer;
  boost::system::error_code ec;
  co_await http::async_read(garbage, garbage_buffer, response, net::redirect_error(use_task, ec));
  if (ec || response.result() != http::status::bad_request) fail("garbage: no 400");
}

/// Clients that go away: half a request's headers, a body cut short, and a whole request whose
/// response is never read (it is served through both hops all the same); then one that stays.
ucm::Task<> vanishing_clients(net::io_context& io, tcp::endpoint frontend_endpoint) {
  ucm::ContextVariableScope name(service_name, "client");
  const std::vector<std::string> partial{
      "GET /work/half-headers HTTP/1.1\r\nHost: 127.0.0.1\r\ntraceparent: 00-4bf92f35",
      "POST /work/short-body HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc"};
  for (const std::string& bytes : partial) {
    beast::tcp_stream stream(net::make_strand(io));
    co_await stream.async_connect(frontend_endpoint, use_task);
    co_await net::async_write(stream, net::buffer(bytes), use_task);
    stream.close();
  }
  beast::tcp_stream stream(net::make_strand(io));
  co_await stream.async_connect(frontend_endpoint, use_task);
  const ucm::w3c::TraceContext trace = ucm::w3c::TraceContext::new_trace();
  ucm::ContextFrameScope request_scope(
      ucm::call_window,
      ucm::with(request_id, std::string("req-gone")).with(ucm::w3c::trace_context, trace).frame());
  Request request{http::verb::get, "/work/req-gone", 11};
  request.set(http::field::host, "127.0.0.1");
  request.set("x-request-id", "req-gone");
  ucm::w3c::inject(request);
  log("sending /work/req-gone and leaving");
  co_await http::async_write(stream, request, use_task);
  stream.close();
  // The server accepts connections in order: once a later one is answered, the ones above were
  // accepted, and shutdown waits for their sessions.
  beast::tcp_stream after(net::make_strand(io));
  co_await after.async_connect(frontend_endpoint, use_task);
  beast::flat_buffer buffer;
  const std::string id = "req-after";
  const ucm::w3c::TraceContext after_trace = ucm::w3c::TraceContext::new_trace();
  ucm::ContextFrameScope after_scope(
      ucm::call_window,
      ucm::with(request_id, id).with(ucm::w3c::trace_context, after_trace).frame());
  Request last{http::verb::get, "/work/" + id, 11};
  last.set("x-request-id", id);
  ucm::w3c::inject(last);
  log("sending /work/" + id);
  const Response response = co_await exchange(after, buffer, std::move(last));
  check_known(response, id, after_trace, "-");
}

/// Every log line carries the context it was written in: for each request id one trace, on
/// every hop; a line naming a request's target belongs to that request; lines outside requests
/// (a session's end, the accept loop) carry no request at all. Returns the number of requests.
std::size_t check_log(const std::map<std::string, std::string>& known_traces) {
  std::map<std::string, std::string> trace_of;
  std::map<std::string, std::set<std::string>> services_of;
  for (const LogLine& line : log_lines) {
    if (line.request == "-") {
      if (line.trace != "-") fail("a line outside any request has a trace: " + line.text);
      continue;
    }
    auto [it, inserted] = trace_of.emplace(line.request, line.trace);
    if (!inserted && it->second != line.trace) {
      fail(line.request + " seen with two traces: " + line.text);
    }
    services_of[line.request].insert(line.service);
    const std::size_t slash = line.text.rfind('/');
    if (slash != std::string::npos && line.request.starts_with("req-")) {
      std::string item = line.text.substr(slash + 1);
      item = item.substr(0, item.find(' '));
      if (item != line.request) fail(line.request + " logged another request: " + line.text);
    }
  }
  for (const auto& [id, trace] : known_traces) {
    const auto it = trace_of.find(id);
    if (it == trace_of.end() || it->second != trace) fail(id + ": not logged with its trace");
    if (services_of[id] != std::set<std::string>{"backend", "client", "frontend"}) {
      fail(id + ": not logged by every hop");
    }
  }
  return trace_of.size();
}

bool slots_empty() {
  return ucm::ContextFrame::current() == ucm::ContextFrame{} &&
         ucm::ContextFrame::inherited() == ucm::ContextFrame{};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode != "" && mode != "--check" && mode != "--serve") {
    std::fprintf(stderr, "usage: %s [--check | --serve]\n", argv[0]);
    return 2;
  }
  print_log = mode != "--check";
  const int connections = mode == "--check" ? 8 : 2;
  const int per_connection = mode == "--check" ? 6 : 2;

  net::io_context io;
  auto work = net::make_work_guard(io);
  std::atomic<int> dirty_threads{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      io.run();
      if (!slots_empty()) ++dirty_threads;  // nothing may be left in an I/O thread
    });
  }

  Sessions sessions;
  Server backend_server(io, "backend", backend, sessions);
  Server frontend_server(io, "frontend", frontend, sessions);
  frontend_server.set_backend(backend_server.endpoint());
  backend_server.start();
  frontend_server.start();
  const tcp::endpoint endpoint = frontend_server.endpoint();

  std::map<std::string, std::string> known_traces;
  if (mode == "--serve") {
    std::printf("serving http://127.0.0.1:%u/work/<anything> (Ctrl-C to stop)\n", endpoint.port());
    net::signal_set signals(io, SIGINT, SIGTERM);
    ucm::sync_wait([&]() -> ucm::Task<> { co_await signals.async_wait(use_task); }());
  } else {
    // The clients log their requests too: collect the traces they chose from their lines.
    std::vector<ucm::Task<>> clients;
    for (int c = 0; c < connections; ++c) {
      clients.push_back(known_client(io, endpoint, c, per_connection));
    }
    clients.push_back(malformed_client(io, endpoint));
    clients.push_back(vanishing_clients(io, endpoint));
    ucm::sync_wait(ucm::when_all(std::move(clients)));
  }

  frontend_server.stop();
  backend_server.stop();
  sessions.wait_idle();  // every session ended: the vanished clients' ones too
  work.reset();
  for (auto& t : threads) t.join();

  if (mode == "--serve") return 0;
  for (const LogLine& line : log_lines) {
    if (line.service == "client" && line.request != "-" && line.text.starts_with("sending")) {
      known_traces.emplace(line.request, line.trace);
    }
  }
  const std::size_t requests = check_log(known_traces);
  if (known_traces.size() != static_cast<std::size_t>(connections * per_connection) + 2) {
    fail("the clients did not send every request");
  }
  // Every client that went mid-request ended its session, which logged it outside any request.
  int ended_mid_request = 0;
  int bad_requests = 0;
  for (const LogLine& line : log_lines) {
    if (line.text.starts_with("connection ended mid-request") ||
        line.text.starts_with("malformed HTTP")) {
      ++(line.text.starts_with("malformed") ? bad_requests : ended_mid_request);
      if (line.request != "-" || line.trace != "-")
        fail("a session's end kept a request: " + line.text);
    }
  }
  if (ended_mid_request < connections + 2 || bad_requests != 1) {
    fail("not every vanished or malformed client was seen");
  }
  if (dirty_threads != 0) fail("an I/O thread was left with a context");
  if (!slots_empty()) fail("the main thread was left with a context");
  for (const std::string& f : failures) std::printf("MISMATCH: %s\n", f.c_str());
  std::printf("%s: %zu requests over two hops, %zu log lines, each in its own request's context\n",
              failures.empty() ? "OK" : "FAILED", requests, log_lines.size());
  return failures.empty() ? 0 : 1;
}
