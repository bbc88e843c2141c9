// SPDX-License-Identifier: MIT
// Auto-instrumentation with window channels (ucm/channel.hpp), the way APM agents instrument Node
// libraries through diagnostics_channel.
//
// Two small "libraries", a fake database client and an HTTP-ish server, announce their operations
// on ucm::TracingChannels and know nothing of tracing (they use ucm only to keep their own work in
// the caller's context). A separate "agent" subscribes: it binds a span and a W3C trace context to
// each operation's start (bind_store), and records the five events of each. The application's
// request handler has no tracing code at all. The span links come from the context alone:
//   - child-of:     the span active where the operation started (`get_active()`);
//   - follows-from: the spans that flowed into that continuation (`ContextFrame::inherited_all()`):
//                   what an awaited Task left, every branch of a when_all, the operation a posted
//                   callback completes.
// The request makes synchronous calls (one fails), starts a query whose callback runs on a pool
// thread, awaits a query Task that hops to the pool, and joins two more with ucm::when_all.
// Every log line, written by the libraries and the handler through spdlog with no parameter,
// carries the request's trace id and its span through the ucm::spdlog pattern flag (`%Q`).
//
// The program prints the span graph and the log, checks both (every edge, every span's events
// in order, every log line's trace id) and exits 0 when they are as this comment describes.
#include <ucm/channel.hpp>
#include <ucm/fmt.hpp>
#include <ucm/propagation/w3c.hpp>
#include <ucm/spdlog.hpp>
#include <ucm/task.hpp>
#include <ucm/ucm.hpp>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "thread_pool.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

// =================================================================================================
// The libraries: they announce their operations, and know nothing of tracing.
// =================================================================================================
namespace minidb {

/// What the client announces for each query.
struct QueryEvent {
  std::string sql;
};

/// Every query of every client: start, end, async_start, async_end, error.
inline ucm::TracingChannel<QueryEvent> query_channel;

class Client {
 public:
  explicit Client(example::ThreadPool& pool) : pool_(pool) {}

  /// A synchronous query.
  int query_sync(const std::string& sql) {
    return query_channel.trace_sync(QueryEvent{sql}, [&] { return execute(sql); });
  }

  /// A query as a Task; it runs on the client's pool.
  ucm::Task<int> query(std::string sql) {
    QueryEvent event{sql};
    return query_channel.trace_task(std::move(event), run(std::move(sql)));
  }

  /// A query whose result goes to `done` on a pool thread.
  void query_async(const std::string& sql, std::function<void(std::error_code, int)> done) {
    query_channel.trace_callback(
        QueryEvent{sql},
        [this](const std::string& s, std::function<void(std::error_code, int)> callback) {
          // The library keeps its own work in the caller's context (ucm, not tracing).
          pool_.post(ucm::ContextFrame::bind([this, s, callback = std::move(callback)] {
            callback(std::error_code(), execute(s));
          }));
        },
        sql, std::move(done));
  }

 private:
  ucm::Task<int> run(std::string sql) {
    co_await pool_.schedule();
    co_return execute(sql);
  }

  int execute(const std::string& sql) {
    spdlog::info("db: {}", sql);
    if (sql.find("missing") != std::string::npos) throw std::runtime_error("no such table");
    return static_cast<int>(sql.size());
  }

  example::ThreadPool& pool_;
};

}  // namespace minidb

namespace minihttp {

struct Request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;
};

/// What the server announces for each request.
struct RequestEvent {
  const Request* request;
};

inline ucm::TracingChannel<RequestEvent> request_channel;

using Handler = std::function<ucm::Task<int>(const Request&)>;

class Server {
 public:
  explicit Server(Handler handler) : handler_(std::move(handler)) {}
  /// Serves one request: the handler's Task, announced on request_channel.
  ucm::Task<int> serve(const Request& request) {
    return request_channel.trace_task(RequestEvent{&request}, handler_(request));
  }

 private:
  Handler handler_;
};

}  // namespace minihttp

// =================================================================================================
// The agent: subscribes to the libraries' channels; the application never calls it.
// =================================================================================================
namespace agent {

/// The span the running code is in: its only context (plus W3C's trace context).
inline ucm::ContextVariable<int> current_span{ucm::named("span").expose()};

struct Span {
  int id = 0;
  std::string name;
  int child_of = 0;          // 0: none
  std::vector<int> follows;  // follows-from links
  std::string trace_id;
  std::vector<std::string> events;
};

class Tracer {
 public:
  /// Starts a span; its links come from the context alone.
  int begin(std::string name) {
    const int* active = current_span.get_active();
    const int parent = active == nullptr ? 0 : *active;
    std::vector<int> follows;
    for (const ucm::ContextFrame& frame : ucm::ContextFrame::inherited_all()) {
      const int* from = frame.get(current_span);
      if (from == nullptr || *from == parent) continue;
      if (std::find(follows.begin(), follows.end(), *from) == follows.end()) {
        follows.push_back(*from);
      }
    }
    const std::lock_guard lock(mutex_);
    Span span;
    span.id = static_cast<int>(spans_.size()) + 1;
    span.name = std::move(name);
    span.child_of = parent;
    span.follows = std::move(follows);
    spans_.push_back(std::move(span));
    return spans_.back().id;
  }

  /// Records an event of the span `id` (nullptr: an event outside any span, a bug).
  void record(const int* id, const char* event) {
    const std::lock_guard lock(mutex_);
    if (id == nullptr || *id < 1 || *id > static_cast<int>(spans_.size())) {
      lost_.push_back(event);
      return;
    }
    Span& span = spans_[static_cast<std::size_t>(*id - 1)];
    span.events.emplace_back(event);
    if (std::string_view(event) == "start") {
      // Inside the start window: the trace context bound for this span.
      if (const auto* trace = ucm::w3c::trace_context.get())
        span.trace_id = fmt::format("{:t}", *trace);
    }
  }

  std::vector<Span> spans() const {
    const std::lock_guard lock(mutex_);
    return spans_;
  }
  std::vector<std::string> lost() const {
    const std::lock_guard lock(mutex_);
    return lost_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Span> spans_;
  std::vector<std::string> lost_;
};

/// Instruments one TracingChannel: each operation gets a span and a W3C trace context (both
/// bound at start, so they hold for the operation's whole run), and every event is recorded
/// on the span it belongs to, found through the context:
///   - start, end and a synchronous error are published inside the start window: `get()`;
///   - async_start and async_end are published in the awaiter's context (a Task) or in the
///     callback's (a callback): what the operation left there is `get_inherited()`.
template <class M, class Name, class Trace>
void instrument(ucm::TracingChannel<M>& channel, Tracer& tracer, Name name, Trace trace,
                std::vector<ucm::Subscription>& subs) {
  subs.push_back(channel.start.bind_store(current_span, [&tracer, name](M& m) {
    return tracer.begin(name(m));  // runs in the caller's context: its active span is the parent
  }));
  subs.push_back(channel.start.bind_store(ucm::w3c::trace_context, trace));
  subs.push_back(
      channel.start.subscribe([&tracer](M&) { tracer.record(current_span.get(), "start"); }));
  subs.push_back(
      channel.end.subscribe([&tracer](M&) { tracer.record(current_span.get(), "end"); }));
  subs.push_back(
      channel.error.subscribe([&tracer](M&) { tracer.record(current_span.get(), "error"); }));
  subs.push_back(channel.async_start.subscribe(
      [&tracer](M&) { tracer.record(current_span.get_inherited(), "async_start"); }));
  subs.push_back(channel.async_end.subscribe(
      [&tracer](M&) { tracer.record(current_span.get_inherited(), "async_end"); }));
}

class Agent {
 public:
  explicit Agent(Tracer& tracer) {
    instrument(
        minihttp::request_channel, tracer,
        [](minihttp::RequestEvent& e) { return e.request->method + " " + e.request->path; },
        [](minihttp::RequestEvent& e) {
          // Continue the caller's trace (W3C traceparent), or start one.
          const auto header = e.request->headers.find("traceparent");
          if (header != e.request->headers.end()) {
            if (auto parent = ucm::w3c::TraceContext::parse(header->second)) return parent->child();
          }
          return ucm::w3c::TraceContext::new_trace();
        },
        subs_);
    instrument(
        minidb::query_channel, tracer, [](minidb::QueryEvent& e) { return "db " + e.sql; },
        [](minidb::QueryEvent&) {
          const ucm::w3c::TraceContext* trace = ucm::w3c::trace_context.get();
          return trace != nullptr ? trace->child() : ucm::w3c::TraceContext::new_trace();
        },
        subs_);
  }

 private:
  std::vector<ucm::Subscription> subs_;
};

}  // namespace agent

// =================================================================================================
// The application: a request handler with no tracing code.
// =================================================================================================
namespace {

minidb::Client* database = nullptr;

ucm::Task<int> handle_orders(const minihttp::Request& request) {
  minidb::Client& db = *database;
  spdlog::info("handling {} {}", request.method, request.path);
  (void)db.query_sync("select session");
  try {
    (void)db.query_sync("select missing");
  } catch (const std::exception& e) {
    spdlog::warn("ignored: {}", e.what());
  }
  db.query_async("insert audit", [&db](std::error_code, int) {
    // A posted callback, on a pool thread.
    spdlog::info("audit written");
    (void)db.query_sync("update audit_count");
  });
  const int orders = co_await db.query("select orders");
  const auto [invoices, shipments] =
      co_await ucm::when_all(db.query("select invoices"), db.query("select shipments"));
  (void)db.query_sync("update last_seen");
  spdlog::info("responding ({} rows)", orders + invoices + shipments);
  co_return 200;
}

const char* const client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";

// ---- printing and checking ----------------------------------------------------------------------
std::string label(const std::vector<agent::Span>& spans, int id) {
  std::string text = "#";
  text += std::to_string(id);
  text += ' ';
  text += spans[static_cast<std::size_t>(id - 1)].name;
  return text;
}

int depth_of(const std::vector<agent::Span>& spans, const agent::Span& s) {
  int depth = 0;
  for (int p = s.child_of; p != 0; p = spans[static_cast<std::size_t>(p - 1)].child_of) ++depth;
  return depth;
}

void print_tree(const std::vector<agent::Span>& spans, int parent) {
  for (const agent::Span& s : spans) {
    if (s.child_of != parent) continue;
    std::string line(static_cast<std::size_t>(2 * depth_of(spans, s)), ' ');
    line += label(spans, s.id);
    line.resize(std::max<std::size_t>(line.size() + 2, 30), ' ');
    std::string events;
    for (const std::string& e : s.events) events += (events.empty() ? "" : ",") + e;
    line += events;
    if (!s.follows.empty()) {
      line += "  follows-from ";
      for (std::size_t i = 0; i < s.follows.size(); ++i) {
        if (i != 0) line += ", ";
        line += label(spans, s.follows[i]);
      }
    }
    std::printf("  %s\n", line.c_str());
    print_tree(spans, s.id);
  }
}

/// Whether `events` are `expected`; for a callback's operation, `end` (published when the
/// initiating call returns) may come anywhere after `start`: the callback may already have run
/// on a pool thread by then.
bool events_match(std::vector<std::string> events, const std::vector<std::string>& expected,
                  bool end_anywhere) {
  if (end_anywhere) {
    const auto end = std::find(events.begin(), events.end(), "end");
    if (end == events.end() || end == events.begin()) return false;
    events.erase(end);
    std::vector<std::string> rest = expected;
    rest.erase(std::find(rest.begin(), rest.end(), "end"));
    return events == rest;
  }
  return events == expected;
}

}  // namespace

int main() {
  // The log: every line goes to stdout and into a string the check reads; `%Q` writes the
  // context's trace id and span. (Sinks that format later, on another thread or on demand, such
  // as spdlog's async logger or ringbuffer_sink, would see that thread's context instead.)
  std::ostringstream captured;
  auto copy = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto out = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("app", spdlog::sinks_init_list{out, copy});
  ucm::spdlog::ContextFields fields;
  fields
      .add("trace", ucm::w3c::trace_context,
           [](const ucm::w3c::TraceContext& t) { return t.trace_id; })
      .add(agent::current_span);
  logger->set_formatter(ucm::spdlog::context_formatter("  [%Q] %v", std::move(fields)));
  spdlog::set_default_logger(logger);

  agent::Tracer tracer;
  int status = 0;
  {
    const agent::Agent instrumentation(tracer);
    // Destroyed first: the pool finishes every task (the posted callback included) and joins.
    example::ThreadPool pool(3);
    minidb::Client db(pool);
    database = &db;
    minihttp::Server server(handle_orders);
    const minihttp::Request request{
        "GET",
        "/orders",
        {{"traceparent", std::string("00-") + client_trace + "-00f067aa0ba902b7-01"}}};
    std::printf("log\n");
    status = ucm::sync_wait(server.serve(request));
  }
  spdlog::set_default_logger(nullptr);

  const std::vector<agent::Span> spans = tracer.spans();
  std::printf("\nspan graph (status %d)\n", status);
  std::printf(
      "  indented under its child-of parent (get_active); events in order; follows-from:\n");
  std::printf("  inherited_all\n\n");
  print_tree(spans, 0);

  // What the graph must be, by name (the callback's spans start on a pool thread, so the ids of
  // spans started meanwhile may come in another order).
  struct Expected {
    const char* name;
    const char* child_of;              // nullptr: none
    std::vector<const char*> follows;  // by name, in order
    std::vector<std::string> events;
    bool end_anywhere;
  };
  const std::vector<std::string> sync = {"start", "end"};
  const std::vector<std::string> async = {"start", "end", "async_start", "async_end"};
  const std::vector<Expected> expected = {
      {"GET /orders", nullptr, {}, async, false},
      {"db select session", "GET /orders", {}, sync, false},
      {"db select missing", "GET /orders", {}, {"start", "error", "end"}, false},
      {"db insert audit", "GET /orders", {}, async, true},
      // The posted callback's query: a continuation, not a child; it follows from the query
      // whose callback it is.
      {"db update audit_count", nullptr, {"db insert audit"}, sync, false},
      {"db select orders", "GET /orders", {}, async, false},
      // Each branch starts after `select orders` finished: its final context flowed in.
      {"db select invoices", "GET /orders", {"db select orders"}, async, false},
      {"db select shipments", "GET /orders", {"db select orders"}, async, false},
      // After the join: the merge, every branch in argument order.
      {"db update last_seen",
       "GET /orders",
       {"db select invoices", "db select shipments"},
       sync,
       false},
  };
  auto find = [&](const char* name) -> const agent::Span* {
    for (const agent::Span& s : spans) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  std::vector<std::string> problems;
  if (spans.size() != expected.size()) problems.push_back("wrong number of spans");
  for (const Expected& e : expected) {
    const agent::Span* s = find(e.name);
    if (s == nullptr) {
      problems.push_back(std::string("missing span ") + e.name);
      continue;
    }
    const agent::Span* parent = e.child_of == nullptr ? nullptr : find(e.child_of);
    if ((parent == nullptr ? 0 : parent->id) != s->child_of ||
        (e.child_of != nullptr && parent == nullptr)) {
      problems.push_back(std::string("wrong child-of edge of ") + e.name);
    }
    std::vector<int> follows;
    for (const char* f : e.follows) follows.push_back(find(f) == nullptr ? -1 : find(f)->id);
    if (follows != s->follows)
      problems.push_back(std::string("wrong follows-from edges of ") + e.name);
    if (!events_match(s->events, e.events, e.end_anywhere)) {
      problems.push_back(std::string("wrong events of ") + e.name);
    }
    if (s->trace_id != client_trace) problems.push_back(std::string("wrong trace of ") + e.name);
  }
  if (!tracer.lost().empty()) problems.push_back("events outside any span");

  // Every log line of the request carries its trace id, and the span it was written in.
  std::vector<std::string> lines;
  std::istringstream log_text(captured.str());
  for (std::string line; std::getline(log_text, line);) lines.push_back(line);
  if (lines.size() != 12)
    problems.push_back("expected 12 log lines, got " + std::to_string(lines.size()));
  for (const std::string& line : lines) {
    if (line.find(std::string("[trace=") + client_trace + " span=") == std::string::npos) {
      problems.push_back("a log line without its trace id and span: " + line);
    }
  }
  if (status != 200) problems.push_back("wrong status");

  for (const std::string& p : problems) std::printf("problem: %s\n", p.c_str());
  std::printf("\n%s\n", problems.empty() ? "graph and log as expected" : "UNEXPECTED GRAPH OR LOG");
  return problems.empty() ? 0 : 1;
}
