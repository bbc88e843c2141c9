// SPDX-License-Identifier: MIT
// The soak and fault test (issue 12): a real standalone-Asio server on 127.0.0.1 and a client in
// the same process, checking end to end that a request sees its own context at every hop and
// nothing of another request, ever. One source for two forms: the Catch2 case in
// tests/soak_test.cpp (a small size, under the sanitizers in CI) and the program bench/soak.cpp
// (1,000,000 requests over 1,000 connections, RSS, throughput, and a `--no-ucm` baseline).
//
// The server: one connection-loop Task per connection (ucm::Task, driven by ucm::asio::use_task),
// requests handled one after another on a multi-threaded io_context. Each request is entered in
// one of the three ways users enter one, rotating per request on a connection:
//   0. two ContextVariableScopes (request id, W3C trace context) spanning `co_await handle(...)`;
//   1. ContextManager::run_all over the request, which starts the handler Task inside its window;
//   2. a continuation window over ucm::w3c::extract of the request's headers (traceparent, and
//      baggage carrying the request id through a registered codec).
// The handler then hops through: a use_task timer, a function posted through a ContextExecutor to
// a thread pool, a ContextFrame::bind callable on another thread, a propagate callback, a child
// Task (with a use_task post), and a when_all of two child Tasks. At every hop it records what
// `get()`, `get_inherited()` and `inherited_all()` show; before the request's values are entered
// and after its window has closed it records the same outside (which must show nothing at all).
// About 1% of the requests carry a planned fault: the server throws at that hop, catches it per
// request, replies with an error status, and the connection loop goes on.
//
// The client (its own io_context and threads, never touching ucm): many connections, each sending
// requests one after another with known ids, and checking every hop of every reply.
//
// In `--no-ucm` form (WithoutUcm) the same server code runs on a plain coroutine kit
// (soak_plain.hpp) and passes the ids explicitly: the baseline of instructions per request.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "soak_plain.hpp"
#include "ucm/asio.hpp"
#include "ucm/manager.hpp"
#include "ucm/propagation/w3c.hpp"
#include "ucm/task.hpp"
#include "ucm/ucm.hpp"

namespace ucm_soak {

using tcp = ::asio::ip::tcp;

// =============================================================================================
// What is observed, and the wire format
// =============================================================================================

/// Where the server observes a request's context: the hops, then the two outside points.
enum Slot : unsigned {
  entered,           // the handler Task starts
  after_timer,       // resumed by a use_task timer (an I/O thread)
  on_pool,           // a function posted through a ContextExecutor (a pool thread)
  after_pool,        // the handler, resumed by that function
  bound,             // a ContextFrame::bind callable run on another thread
  callback,          // a propagate(...) completion callback (an I/O thread)
  child_entered,     // a child Task co_awaited
  child_after_post,  // the child, after a use_task post
  after_child,       // the handler after the child (the return path)
  branch_a,          // a when_all branch, at once
  branch_b,          // the other branch, after a use_task post
  after_when_all,    // the handler after the when_all (the merge)
  hop_count,
  before = hop_count,  // the connection loop, after reading the request, before entering it
  after,               // the connection loop, after the request's window has closed
  slot_count
};

inline constexpr std::array<const char*, slot_count> slot_names{
    "entered",  "after_timer",    "on_pool",          "after_pool",  "bound",
    "callback", "child_entered",  "child_after_post", "after_child", "branch_a",
    "branch_b", "after_when_all", "before",           "after"};

/// What one observation saw. Ids are 0 where nothing was found; a trace is the low 64 bits of
/// the W3C trace-id.
struct Observation {
  std::uint64_t rid;                          // request_id.get()
  std::uint64_t trace;                        // w3c::trace_context.get()
  std::uint64_t inherited_rid;                // request_id.get_inherited()
  std::uint64_t inherited_trace;              // w3c::trace_context.get_inherited()
  std::array<std::uint64_t, 2> merged_rid;    // distinct request ids in inherited_all()
  std::array<std::uint64_t, 2> merged_trace;  // distinct traces in inherited_all()
  std::uint32_t frames;  // variables bound in current(), inherited() and every inherited_all()
  std::uint32_t flags;   // recorded_flag, overflow_flag
};
inline constexpr std::uint32_t recorded_flag = 1;
inline constexpr std::uint32_t overflow_flag = 2;  // more than two distinct ids in inherited_all

enum Status : std::uint32_t { status_ok = 1, status_planned_fault = 2, status_error = 3 };

/// The reply, sent as bytes (client and server are the same program).
struct Reply {
  std::uint64_t rid;
  std::uint32_t status;
  std::uint32_t entry;  // how the request was entered: 0 scopes, 1 run_all, 2 extract
  std::array<Observation, slot_count> slots;
};
static_assert(std::is_trivially_copyable_v<Reply>);

/// A request as the server parsed it: `REQ <rid> <fault-hop or -1>` and two headers.
struct Request {
  std::uint64_t rid = 0;
  int fault = -1;
  std::string traceparent;
  std::string baggage;
};

/// The request's headers as a W3C carrier (absent: empty).
struct Headers {
  const Request* request;
  [[nodiscard]] std::string_view get(const std::string& name) const {
    if (name == "traceparent") return request->traceparent;
    if (name == "baggage") return request->baggage;
    return {};
  }
};

/// A 64-bit mixer (splitmix64's finaliser: a bijection), for ids and seeds.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// The trace a request carries (low 64 bits of its trace-id): distinct per request id.
constexpr std::uint64_t trace_of(std::uint64_t rid, std::uint64_t seed) noexcept {
  const std::uint64_t t = mix(rid ^ mix(seed));
  return t == 0 ? 1 : t;
}

inline void append_hex64(std::string& out, std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(digits[(v >> shift) & 0xF]);
}

/// Parses 16 lower-case hex digits; 0 when they are not.
inline std::uint64_t parse_hex64(std::string_view text) noexcept {
  if (text.size() != 16) return 0;
  std::uint64_t v = 0;
  for (const char c : text) {
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return 0;
    }
    v = (v << 4) | d;
  }
  return v;
}

inline std::uint64_t parse_decimal(std::string_view text) noexcept {
  std::uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

/// The low 64 bits of the trace-id in a traceparent (`00-<32 hex>-<16 hex>-<2 hex>`), or 0.
inline std::uint64_t trace_low_of(std::string_view traceparent) noexcept {
  if (traceparent.size() != 55) return 0;
  return parse_hex64(traceparent.substr(19, 16));
}

/// Writes the request text for `rid` (fault: the hop at which the server must throw, or -1).
inline void write_request(std::string& out, std::uint64_t rid, int fault, std::uint64_t seed) {
  out.clear();
  out.append("REQ ").append(std::to_string(rid)).append(" ").append(std::to_string(fault));
  out.append("\r\ntraceparent: 00-");
  append_hex64(out, mix(rid + 0x5151) | 1);  // high half of the trace-id
  append_hex64(out, trace_of(rid, seed));
  out.push_back('-');
  append_hex64(out, mix(rid + 0x7373) | 1);  // parent-id
  out.append("-01\r\nbaggage: rid=").append(std::to_string(rid)).append("\r\n\r\n");
}

/// Parses what write_request wrote (`text` ends with the blank line). False if malformed.
inline bool parse_request(std::string_view text, Request& request) {
  bool first = true;
  while (!text.empty()) {
    const std::size_t end = text.find("\r\n");
    if (end == std::string_view::npos) return false;
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 2);
    if (line.empty()) return !first;
    if (first) {
      first = false;
      if (line.substr(0, 4) != "REQ ") return false;
      const std::string_view rest = line.substr(4);
      const std::size_t space = rest.find(' ');
      if (space == std::string_view::npos) return false;
      request.rid = parse_decimal(rest.substr(0, space));
      const std::string_view fault = rest.substr(space + 1);
      request.fault = fault == "-1" ? -1 : static_cast<int>(parse_decimal(fault));
      continue;
    }
    const std::size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 2);
    if (name == "traceparent") {
      request.traceparent.assign(value);
    } else if (name == "baggage") {
      request.baggage.assign(value);
    }
  }
  return false;
}

// =============================================================================================
// The two forms of the server: with ucm, and without (ids passed explicitly)
// =============================================================================================

/// The soak test's request id variable; its trace is ucm::w3c::trace_context.
inline ucm::ContextVariable<std::uint64_t> request_id;

inline std::uint64_t trace_low(const ucm::w3c::TraceContext* context) noexcept {
  if (context == nullptr) return 0;
  std::uint64_t v = 0;
  for (std::size_t i = 8; i < 16; ++i) v = (v << 8) | context->trace_id.bytes()[i];
  return v;
}

inline void note_distinct(std::array<std::uint64_t, 2>& seen, std::uint64_t value,
                          std::uint32_t& flags) {
  if (value == 0 || value == seen[0] || value == seen[1]) return;
  if (seen[0] == 0) {
    seen[0] = value;
  } else if (seen[1] == 0) {
    seen[1] = value;
  } else {
    flags |= overflow_flag;
  }
}

/// Everything this thread's context shows of the soak's variables; `lean`: only what `get()`
/// shows (what a server that logs its ids reads: for instruction counts).
inline Observation observe_context(bool lean = false) {
  Observation o{};
  if (const std::uint64_t* r = request_id.get()) o.rid = *r;
  o.trace = trace_low(ucm::w3c::trace_context.get());
  if (lean) return o;
  if (const std::uint64_t* r = request_id.get_inherited()) o.inherited_rid = *r;
  o.inherited_trace = trace_low(ucm::w3c::trace_context.get_inherited());
  for (const ucm::ContextFrame& frame : ucm::ContextFrame::inherited_all()) {
    if (const std::uint64_t* r = frame.get(request_id)) note_distinct(o.merged_rid, *r, o.flags);
    note_distinct(o.merged_trace, trace_low(frame.get(ucm::w3c::trace_context)), o.flags);
    o.frames += static_cast<std::uint32_t>(frame.size());
  }
  o.frames += static_cast<std::uint32_t>(ucm::ContextFrame::current().size() +
                                         ucm::ContextFrame::inherited().size());
  return o;
}

/// The server with ucm: the context carries the ids.
struct WithUcm {
  static constexpr bool uses_ucm = true;
  template <class T = void>
  using Task = ucm::Task<T>;
  static constexpr const ucm::asio::use_task_t& token = ucm::asio::use_task;
  using PoolExecutor = ucm::asio::ContextExecutor<::asio::io_context::executor_type>;
  struct Ids {};  // nothing passed: every hop reads the context

  static Observation observe(const Ids&, bool lean) { return observe_context(lean); }
  static Observation observe_outside() { return observe_context(); }
  template <class F>
  static auto bind(F f) {
    return ucm::ContextFrame::bind(std::move(f));
  }
  template <class F>
  static auto callback(F f) {
    return ucm::asio::propagate(std::move(f));
  }
  static auto when_all(Task<> a, Task<> b) { return ucm::when_all(std::move(a), std::move(b)); }
  static auto when_all(std::vector<Task<>> tasks) { return ucm::when_all(std::move(tasks)); }
};

/// The same server without ucm: the ids are passed explicitly, the outside shows nothing.
struct WithoutUcm {
  static constexpr bool uses_ucm = false;
  template <class T = void>
  using Task = PlainTask<T>;
  static constexpr const use_plain_t& token = use_plain;
  using PoolExecutor = ::asio::io_context::executor_type;
  struct Ids {
    std::uint64_t rid;
    std::uint64_t trace;
  };

  static Observation observe(const Ids& ids, bool) {
    Observation o{};
    o.rid = ids.rid;
    o.trace = ids.trace;
    return o;
  }
  static Observation observe_outside() { return Observation{}; }
  template <class F>
  static F bind(F f) {
    return f;
  }
  template <class F>
  static F callback(F f) {
    return f;
  }
  static PlainTask<> when_all(PlainTask<> a, PlainTask<> b) {
    return plain_when_all(std::move(a), std::move(b));
  }
  static PlainTask<> when_all(std::vector<PlainTask<>> tasks) {
    return plain_when_all(std::move(tasks));
  }
};

/// How requests are entered with ucm: the manager (run_all) and the baggage codec (extract).
struct UcmEntry {
  ucm::ContextManager<Request> manager;
  ucm::w3c::BaggageCodecRegistration rid_codec;

  UcmEntry() : rid_codec(ucm::w3c::register_baggage_codec(request_id, "rid")) {
    manager.register_context("request", request_id, [](const Request& r) { return r.rid; })
        .register_context("trace", ucm::w3c::trace_context, [](const Request& r) {
          return ucm::w3c::TraceContext::parse(r.traceparent).value_or(ucm::w3c::TraceContext{});
        });
  }
};

/// The server's executors and counters.
template <class P>
struct Server {
  ::asio::io_context& io;                   // connections, timers, use_task posts
  typename P::PoolExecutor pool;            // the thread pool (a ContextExecutor with ucm)
  ::asio::io_context::executor_type other;  // "another thread", for the ContextFrame::bind hop
  UcmEntry* ucm_entry;                      // with ucm only
  int entry;                                // Options::entry
  bool lean;                                // Options::lean
  std::atomic<std::uint64_t> io_errors{0};
};

/// Thrown at the planned hop.
struct PlannedFault : std::runtime_error {
  PlannedFault() : std::runtime_error("planned fault") {}
};

/// One request on the server: what it asked, and the reply being filled in (each slot written
/// by one hop only, read once the handler has completed).
struct Exchange {
  Request request;
  Reply reply{};
  bool lean = false;  // hops read only get()
};

template <class P>
void record(Exchange& exchange, Slot slot, const typename P::Ids& ids) {
  Observation& o = exchange.reply.slots[slot];
  o = P::observe(ids, exchange.lean);
  o.flags |= recorded_flag;
  if (static_cast<int>(slot) == exchange.request.fault) throw PlannedFault();
}

/// record() for callbacks on other threads: the exception travels back to the handler.
template <class P>
std::exception_ptr record_caught(Exchange& exchange, Slot slot, const typename P::Ids& ids) {
  try {
    record<P>(exchange, slot, ids);
    return nullptr;
  } catch (...) {
    return std::current_exception();
  }
}

template <class P>
typename P::template Task<> child(Exchange& exchange, typename P::Ids ids, Server<P>& server) {
  record<P>(exchange, child_entered, ids);
  co_await ::asio::post(server.io, P::token);
  record<P>(exchange, child_after_post, ids);
}

template <class P>
typename P::template Task<> branch(Exchange& exchange, typename P::Ids ids, Server<P>& server,
                                   Slot slot) {
  if (slot == branch_b) co_await ::asio::post(server.io, P::token);
  record<P>(exchange, slot, ids);
}

/// The request handler: every hop, recording what each one sees.
template <class P>
typename P::template Task<> handle(Exchange& exchange, typename P::Ids ids, Server<P>& server) {
  record<P>(exchange, entered, ids);

  ::asio::steady_timer timer(server.io, std::chrono::steady_clock::duration::zero());
  co_await timer.async_wait(P::token);
  record<P>(exchange, after_timer, ids);

  {
    Event done;
    ::asio::post(server.pool,
                 [&exchange, ids, &done] { done.set(record_caught<P>(exchange, on_pool, ids)); });
    co_await done;
  }
  record<P>(exchange, after_pool, ids);

  {
    Event done;
    ::asio::post(server.other, P::bind([&exchange, ids, &done] {
                   done.set(record_caught<P>(exchange, bound, ids));
                 }));
    co_await done;
  }

  {
    Event done;
    timer.expires_after(std::chrono::steady_clock::duration::zero());
    timer.async_wait(P::callback([&exchange, ids, &done](std::error_code) {
      done.set(record_caught<P>(exchange, callback, ids));
    }));
    co_await done;
  }

  co_await child<P>(exchange, ids, server);
  record<P>(exchange, after_child, ids);

  co_await P::when_all(branch<P>(exchange, ids, server, branch_a),
                       branch<P>(exchange, ids, server, branch_b));
  record<P>(exchange, after_when_all, ids);
}

/// One connection: accepts it, then handles its requests one after another until the client
/// closes it. The request's window is opened here, in the loop's body, as users write it.
template <class P>
typename P::template Task<> connection(tcp::acceptor& acceptor, Server<P>& server) {
  std::optional<tcp::socket> accepted;
  try {
    accepted.emplace(co_await acceptor.async_accept(P::token));
  } catch (const std::system_error&) {
    // The acceptor was closed: this connection never came.
  }
  if (!accepted) co_return;
  tcp::socket& socket = *accepted;
  socket.set_option(tcp::no_delay(true));
  std::string buffer;
  for (std::uint32_t index = 0;; ++index) {
    Exchange exchange;
    try {
      const std::size_t n = co_await ::asio::async_read_until(
          socket, ::asio::dynamic_buffer(buffer), "\r\n\r\n", P::token);
      const bool parsed = parse_request(std::string_view(buffer).substr(0, n), exchange.request);
      buffer.erase(0, n);
      if (!parsed) {
        ++server.io_errors;
        break;
      }
    } catch (const std::system_error& e) {
      if (e.code() != ::asio::error::eof) ++server.io_errors;
      break;
    }
    Reply& reply = exchange.reply;
    reply.rid = exchange.request.rid;
    reply.entry = server.entry >= 0 ? static_cast<std::uint32_t>(server.entry) : index % 3;
    exchange.lean = server.lean;
    reply.slots[before] = P::observe_outside();
    reply.slots[before].flags |= recorded_flag;
    try {
      if constexpr (P::uses_ucm) {
        if (reply.entry == 0) {
          ucm::ContextVariableScope rid_scope(request_id, exchange.request.rid);
          ucm::ContextVariableScope trace_scope(
              ucm::w3c::trace_context, ucm::w3c::TraceContext::parse(exchange.request.traceparent)
                                           .value_or(ucm::w3c::TraceContext{}));
          co_await handle<P>(exchange, {}, server);
        } else if (reply.entry == 1) {
          // run_all's call window holds while the handler starts: spawn awaits it there, so it
          // starts from that context (a Task captures when first awaited).
          Event done;
          server.ucm_entry->manager.run_all(exchange.request, [&] {
            spawn(handle<P>(exchange, {}, server),
                  [&done](std::exception_ptr e) { done.set(std::move(e)); });
          });
          co_await done;
        } else {
          ucm::ContextFrameScope scope(ucm::w3c::extract(Headers{&exchange.request}));
          co_await handle<P>(exchange, {}, server);
        }
      } else {
        const typename P::Ids ids{exchange.request.rid, trace_low_of(exchange.request.traceparent)};
        if (reply.entry == 1) {
          Event done;
          spawn(handle<P>(exchange, ids, server),
                [&done](std::exception_ptr e) { done.set(std::move(e)); });
          co_await done;
        } else {
          co_await handle<P>(exchange, ids, server);
        }
      }
      reply.status = status_ok;
    } catch (const PlannedFault&) {
      reply.status = status_planned_fault;
    } catch (...) {
      reply.status = status_error;
    }
    reply.slots[after] = P::observe_outside();
    reply.slots[after].flags |= recorded_flag;
    try {
      co_await ::asio::async_write(socket, ::asio::buffer(&reply, sizeof(Reply)), P::token);
    } catch (const std::system_error&) {
      ++server.io_errors;
      break;
    }
  }
}

template <class P>
typename P::template Task<> serve(tcp::acceptor& acceptor, Server<P>& server,
                                  std::size_t connections) {
  std::vector<typename P::template Task<>> sessions;
  sessions.reserve(connections);
  for (std::size_t i = 0; i < connections; ++i) sessions.push_back(connection<P>(acceptor, server));
  co_await P::when_all(std::move(sessions));
}

// =============================================================================================
// The client and its checks
// =============================================================================================

/// What the client expects of one reply.
struct Expected {
  std::uint64_t rid;
  std::uint64_t trace;
  int fault;  // the planned hop, or -1
};

/// The client's verdict on one reply.
struct Verdict {
  std::uint32_t bad_slots = 0;   // a bit per slot that saw a wrong, foreign or earlier value
  bool planned_error = false;    // the planned fault, reported as such
  bool unplanned_error = false;  // any other error (or a planned fault that did not happen)
};

/// A hop must see its own request's ids through get(), and nothing else through
/// get_inherited() or inherited_all().
inline bool hop_ok(const Observation& o, const Expected& e) {
  const auto own_or_none = [](std::uint64_t seen, std::uint64_t own) {
    return seen == 0 || seen == own;
  };
  return o.rid == e.rid && o.trace == e.trace && own_or_none(o.inherited_rid, e.rid) &&
         own_or_none(o.inherited_trace, e.trace) && own_or_none(o.merged_rid[0], e.rid) &&
         own_or_none(o.merged_rid[1], e.rid) && own_or_none(o.merged_trace[0], e.trace) &&
         own_or_none(o.merged_trace[1], e.trace) && (o.flags & overflow_flag) == 0;
}

/// Outside the request's window (before its values are entered, after its window closed) the
/// connection loop must see nothing at all: no value, inherited or merged, no bound variable.
inline bool outside_ok(const Observation& o) {
  return o.rid == 0 && o.trace == 0 && o.inherited_rid == 0 && o.inherited_trace == 0 &&
         o.merged_rid[0] == 0 && o.merged_rid[1] == 0 && o.merged_trace[0] == 0 &&
         o.merged_trace[1] == 0 && o.frames == 0 && (o.flags & overflow_flag) == 0;
}

/// Checks every observation of a reply.
inline Verdict check_reply(const Expected& e, const Reply& reply) {
  Verdict v;
  if (reply.rid != e.rid) {
    v.bad_slots = (1u << slot_count) - 1;
    v.unplanned_error = true;
    return v;
  }
  for (unsigned s = before; s < slot_count; ++s) {
    const Observation& o = reply.slots[s];
    if ((o.flags & recorded_flag) == 0 || !outside_ok(o)) v.bad_slots |= 1u << s;
  }
  const bool completed = reply.status == status_ok;
  for (unsigned s = 0; s < hop_count; ++s) {
    const Observation& o = reply.slots[s];
    if ((o.flags & recorded_flag) == 0) {
      // Every hop runs in a request that completed; the planned hop runs in one that faulted.
      if (completed || static_cast<int>(s) == e.fault) v.bad_slots |= 1u << s;
      continue;
    }
    if (!hop_ok(o, e)) v.bad_slots |= 1u << s;
  }
  if (reply.status == status_planned_fault && e.fault >= 0) {
    v.planned_error = true;
  } else if (reply.status != status_ok || e.fault >= 0) {
    v.unplanned_error = true;
  }
  return v;
}

/// A run's settings.
struct Options {
  std::size_t connections = 8;
  std::size_t requests = 250;  // per connection
  unsigned server_threads = 2;
  unsigned pool_threads = 2;
  unsigned client_threads = 2;
  std::uint64_t seed = 1;
  unsigned faults_per_thousand = 10;
  bool ucm = true;  // false: the same server without ucm (ids passed explicitly)
  std::chrono::seconds deadline{300};
  double warmup = 0.1;   // the fraction of requests after which RSS is sampled first
  bool verbose = false;  // print the first few mismatching replies
  int entry = -1;        // enter every request one way (0 scopes, 1 run_all, 2 extract); -1: rotate
  bool lean = false;     // hops read only get() (instruction counts); before/after keep every check
};

/// A run's results.
struct Report {
  std::uint64_t expected = 0;          // requests the client was to send
  std::uint64_t completed = 0;         // replies received and checked
  std::uint64_t planned_faults = 0;    // requests sent with a planned fault
  std::uint64_t planned_errors = 0;    // error replies for them
  std::uint64_t unplanned_errors = 0;  // any other error reply, or a fault that did not happen
  std::uint64_t transport_errors = 0;  // client connections that failed
  std::uint64_t server_io_errors = 0;
  std::uint64_t mismatched_requests = 0;      // replies with at least one bad slot
  std::uint64_t mismatched_observations = 0;  // bad slots, in all
  std::array<std::uint64_t, slot_count> mismatches_by_slot{};
  std::array<std::uint64_t, 3> mismatches_by_entry{};  // requests, by how they were entered
  std::uint64_t rss_warm_kib = 0;                      // resident set after the warm-up
  std::uint64_t rss_end_kib = 0;                       // resident set when the last reply arrived
  double seconds = 0;                                  // from the first request to the last reply
  double warm_seconds = 0;                             // from the warm-up to the last reply
  std::uint64_t warm_requests = 0;
  bool deadline_reached = false;

  /// Every request answered, no mismatch, exactly the planned errors.
  [[nodiscard]] bool isolated() const {
    return !deadline_reached && completed == expected && mismatched_requests == 0 &&
           unplanned_errors == 0 && transport_errors == 0 && server_io_errors == 0 &&
           planned_errors == planned_faults;
  }
  /// The resident set did not grow after the warm-up beyond allocator noise: 4 MiB, or 5% of
  /// what it was (only meaningful for long runs, and not under AddressSanitizer's quarantine).
  [[nodiscard]] bool rss_flat() const {
    return rss_end_kib <= rss_warm_kib + std::max<std::uint64_t>(4096, rss_warm_kib / 20);
  }
  /// The program's verdict: isolated, with a flat resident set.
  [[nodiscard]] bool passed() const { return isolated() && rss_flat(); }
};

/// This process's resident set, in KiB (/proc/self/statm).
inline std::uint64_t resident_kib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0;
  unsigned long resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) /
         1024;
}

/// Raises the soft limit on open files to at least `needed` (up to the hard limit).
inline void raise_file_limit(std::size_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed) return;
  limit.rlim_cur =
      limit.rlim_max == RLIM_INFINITY ? needed : std::min<rlim_t>(needed, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
}

/// The client's shared state and counters.
struct Client {
  ::asio::io_context& io;
  tcp::endpoint endpoint;
  const Options& options;
  std::atomic<bool> stop{false};
  std::uint64_t expected = 0;
  std::uint64_t warm_at = 0;
  std::chrono::steady_clock::time_point start{};

  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> planned_faults{0};
  std::atomic<std::uint64_t> planned_errors{0};
  std::atomic<std::uint64_t> unplanned_errors{0};
  std::atomic<std::uint64_t> transport_errors{0};
  std::atomic<std::uint64_t> mismatched_requests{0};
  std::atomic<std::uint64_t> mismatched_observations{0};
  std::array<std::atomic<std::uint64_t>, slot_count> by_slot{};
  std::array<std::atomic<std::uint64_t>, 3> by_entry{};
  std::array<std::atomic<int>, 3> printed{};  // mismatching replies printed, by entry

  // Written once each, by the thread that completes the warm-up or the last request.
  std::atomic<std::uint64_t> rss_warm_kib{0};
  std::atomic<std::uint64_t> rss_end_kib{0};
  std::atomic<std::int64_t> warm_ns{0};
  std::atomic<std::int64_t> end_ns{0};

  void tally(const Expected& e, const Reply& reply, const Verdict& v) {
    if (v.bad_slots != 0) {
      ++mismatched_requests;
      ++by_entry[reply.entry % 3];
      for (unsigned s = 0; s < slot_count; ++s) {
        if ((v.bad_slots & (1u << s)) != 0) {
          ++mismatched_observations;
          ++by_slot[s];
        }
      }
      if (options.verbose && printed[reply.entry % 3].fetch_add(1) < 2) {
        print_mismatch(e, reply, v);
      }
    }
    if (v.planned_error) ++planned_errors;
    if (v.unplanned_error) ++unplanned_errors;
    const std::uint64_t done = completed.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (done == warm_at) milestone(rss_warm_kib, warm_ns);
    if (done == expected) milestone(rss_end_kib, end_ns);
  }

  void milestone(std::atomic<std::uint64_t>& rss, std::atomic<std::int64_t>& ns) const {
    rss.store(resident_kib());
    ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                 .count());
  }

  static void print_mismatch(const Expected& e, const Reply& reply, const Verdict& v) {
    std::fprintf(stderr, "mismatch: request %llu (trace %016llx, entry %u, status %u)\n",
                 static_cast<unsigned long long>(e.rid), static_cast<unsigned long long>(e.trace),
                 reply.entry, reply.status);
    for (unsigned s = 0; s < slot_count; ++s) {
      if ((v.bad_slots & (1u << s)) == 0) continue;
      const Observation& o = reply.slots[s];
      std::fprintf(stderr,
                   "  %-16s rid %llu trace %016llx inherited %llu/%016llx merged %llu,%llu "
                   "frames %u flags %u\n",
                   slot_names[s], static_cast<unsigned long long>(o.rid),
                   static_cast<unsigned long long>(o.trace),
                   static_cast<unsigned long long>(o.inherited_rid),
                   static_cast<unsigned long long>(o.inherited_trace),
                   static_cast<unsigned long long>(o.merged_rid[0]),
                   static_cast<unsigned long long>(o.merged_rid[1]), o.frames, o.flags);
    }
  }
};

/// One client connection: requests one after another with known ids, every reply checked.
inline PlainTask<> client_connection(Client& client, std::size_t index) {
  const Options& o = client.options;
  std::mt19937_64 faults(mix(o.seed) ^ mix(index + 1));
  try {
    tcp::socket socket(client.io);
    co_await socket.async_connect(client.endpoint, use_plain);
    socket.set_option(tcp::no_delay(true));
    std::string request;
    Reply reply{};
    for (std::size_t k = 0; k < o.requests && !client.stop.load(std::memory_order_relaxed); ++k) {
      Expected e{};
      e.rid = index * o.requests + k + 1;
      e.trace = trace_of(e.rid, o.seed);
      e.fault = -1;
      if (faults() % 1000 < o.faults_per_thousand) {
        e.fault = static_cast<int>(faults() % hop_count);
        ++client.planned_faults;
      }
      write_request(request, e.rid, e.fault, o.seed);
      co_await ::asio::async_write(socket, ::asio::buffer(request), use_plain);
      co_await ::asio::async_read(socket, ::asio::buffer(&reply, sizeof(Reply)), use_plain);
      client.tally(e, reply, check_reply(e, reply));
    }
    socket.shutdown(tcp::socket::shutdown_send);
  } catch (const std::system_error&) {
    ++client.transport_errors;
  }
}

inline PlainTask<> client_all(Client& client) {
  std::vector<PlainTask<>> connections;
  connections.reserve(client.options.connections);
  for (std::size_t i = 0; i < client.options.connections; ++i) {
    connections.push_back(client_connection(client, i));
  }
  co_await plain_when_all(std::move(connections));
}

// The threads' entry points, not inlined, so that instruction counts can be limited to the
// server's threads (scripts/soak.sh: callgrind --toggle-collect=ucm_soak::run_server_thread*).
[[gnu::noinline]] inline void run_server_thread(::asio::io_context& io) { io.run(); }
[[gnu::noinline]] inline void run_client_thread(::asio::io_context& io) { io.run(); }

/// Runs the soak with the server `P` and reports.
template <class P>
Report run_with(const Options& o) {
  raise_file_limit(2 * o.connections + 256);
  ::asio::io_context io(static_cast<int>(o.server_threads));
  ::asio::io_context pool_io(static_cast<int>(o.pool_threads));
  ::asio::io_context other_io(1);
  ::asio::io_context client_io(static_cast<int>(o.client_threads));
  auto io_work = ::asio::make_work_guard(io);
  auto pool_work = ::asio::make_work_guard(pool_io);
  auto other_work = ::asio::make_work_guard(other_io);
  auto client_work = ::asio::make_work_guard(client_io);

  std::optional<UcmEntry> entry;
  if constexpr (P::uses_ucm) entry.emplace();
  Server<P> server{io,
                   typename P::PoolExecutor(pool_io.get_executor()),
                   other_io.get_executor(),
                   entry ? &*entry : nullptr,
                   o.entry,
                   o.lean};
  tcp::acceptor acceptor(io, tcp::endpoint(::asio::ip::make_address("127.0.0.1"), 0));
  Client client{client_io, acceptor.local_endpoint(), o};
  client.expected = static_cast<std::uint64_t>(o.connections) * o.requests;
  client.warm_at = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(static_cast<double>(client.expected) * o.warmup));

  // Server threads first (callgrind numbers threads in creation order), then the client's.
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.server_threads; ++i)
    threads.emplace_back(run_server_thread, std::ref(io));
  for (unsigned i = 0; i < o.pool_threads; ++i)
    threads.emplace_back(run_server_thread, std::ref(pool_io));
  threads.emplace_back(run_server_thread, std::ref(other_io));
  for (unsigned i = 0; i < o.client_threads; ++i)
    threads.emplace_back(run_client_thread, std::ref(client_io));

  std::mutex mutex;
  std::condition_variable changed;
  bool server_done = false;
  bool client_done = false;
  const auto finished = [&](bool& flag) {
    return [&mutex, &changed, &flag](std::exception_ptr) {
      {
        std::lock_guard lock(mutex);
        flag = true;
      }
      changed.notify_all();
    };
  };
  ::asio::post(io,
               [&] { spawn(serve<P>(acceptor, server, o.connections), finished(server_done)); });
  client.start = std::chrono::steady_clock::now();
  ::asio::post(client_io, [&] { spawn(client_all(client), finished(client_done)); });

  Report report;
  {
    std::unique_lock lock(mutex);
    const auto deadline = std::chrono::steady_clock::now() + o.deadline;
    if (!changed.wait_until(lock, deadline, [&] { return client_done; })) {
      report.deadline_reached = true;
      client.stop = true;  // every connection stops after its current request
      if (!changed.wait_for(lock, std::chrono::seconds(30), [&] { return client_done; })) {
        std::fprintf(stderr, "soak: a request never completed; %llu of %llu replies received\n",
                     static_cast<unsigned long long>(client.completed.load()),
                     static_cast<unsigned long long>(client.expected));
        std::fflush(stderr);
        std::_Exit(3);
      }
    }
  }
  // Cut short: the figures at the end are those of when the client stopped.
  if (client.end_ns.load() == 0) client.milestone(client.rss_end_kib, client.end_ns);
  if (client.warm_ns.load() == 0) client.milestone(client.rss_warm_kib, client.warm_ns);
  // Connections that never connected leave their server side waiting in accept: close it.
  ::asio::post(io, [&acceptor] { acceptor.close(); });
  {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, std::chrono::seconds(30), [&] { return server_done; })) {
      std::fprintf(stderr, "soak: the server did not finish after the client closed\n");
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
  io_work.reset();
  pool_work.reset();
  other_work.reset();
  client_work.reset();
  for (std::thread& t : threads) t.join();

  report.expected = client.expected;
  report.completed = client.completed;
  report.planned_faults = client.planned_faults;
  report.planned_errors = client.planned_errors;
  report.unplanned_errors = client.unplanned_errors;
  report.transport_errors = client.transport_errors;
  report.server_io_errors = server.io_errors;
  report.mismatched_requests = client.mismatched_requests;
  report.mismatched_observations = client.mismatched_observations;
  for (unsigned s = 0; s < slot_count; ++s) report.mismatches_by_slot[s] = client.by_slot[s];
  for (unsigned e = 0; e < 3; ++e) report.mismatches_by_entry[e] = client.by_entry[e];
  report.rss_warm_kib = client.rss_warm_kib;
  report.rss_end_kib = client.rss_end_kib;
  report.seconds = static_cast<double>(client.end_ns.load()) / 1e9;
  report.warm_seconds = static_cast<double>(client.end_ns.load() - client.warm_ns.load()) / 1e9;
  report.warm_requests = report.completed > client.warm_at ? report.completed - client.warm_at : 0;
  return report;
}

/// Runs the soak as `o` says (with ucm, or the same server without).
inline Report run_soak(const Options& o) {
  return o.ucm ? run_with<WithUcm>(o) : run_with<WithoutUcm>(o);
}

/// Prints a report, one figure a line, and the verdict: with `judge_rss` the program's (isolation
/// and a flat resident set), otherwise isolation only (short runs, sanitizers).
inline void print_report(std::FILE* out, const Options& o, const Report& r, bool judge_rss) {
  std::fprintf(out, "server:              %s, %u I/O threads, %u pool threads\n",
               o.ucm ? "ucm" : "no ucm (ids passed explicitly)", o.server_threads, o.pool_threads);
  std::fprintf(out, "requests:            %llu of %llu (%zu connections x %zu), seed %llu\n",
               static_cast<unsigned long long>(r.completed),
               static_cast<unsigned long long>(r.expected), o.connections, o.requests,
               static_cast<unsigned long long>(o.seed));
  std::fprintf(out, "mismatches:          %llu requests, %llu observations\n",
               static_cast<unsigned long long>(r.mismatched_requests),
               static_cast<unsigned long long>(r.mismatched_observations));
  static constexpr std::array<const char*, 3> entries{"ContextVariableScope", "run_all",
                                                      "w3c::extract window"};
  for (unsigned e = 0; e < 3; ++e) {
    if (r.mismatches_by_entry[e] != 0) {
      std::fprintf(out, "  entered by %-20s %llu requests\n", entries[e],
                   static_cast<unsigned long long>(r.mismatches_by_entry[e]));
    }
  }
  for (unsigned s = 0; s < slot_count; ++s) {
    if (r.mismatches_by_slot[s] != 0) {
      std::fprintf(out, "  at %-16s %llu\n", slot_names[s],
                   static_cast<unsigned long long>(r.mismatches_by_slot[s]));
    }
  }
  std::fprintf(out,
               "errors:              %llu planned of %llu planned faults, %llu unplanned, "
               "%llu transport, %llu server I/O\n",
               static_cast<unsigned long long>(r.planned_errors),
               static_cast<unsigned long long>(r.planned_faults),
               static_cast<unsigned long long>(r.unplanned_errors),
               static_cast<unsigned long long>(r.transport_errors),
               static_cast<unsigned long long>(r.server_io_errors));
  const long long growth =
      static_cast<long long>(r.rss_end_kib) - static_cast<long long>(r.rss_warm_kib);
  std::fprintf(out,
               "RSS:                 %llu KiB after warm-up, %llu KiB at the end (%+lld KiB, "
               "%.0f bytes per request after warm-up): %s\n",
               static_cast<unsigned long long>(r.rss_warm_kib),
               static_cast<unsigned long long>(r.rss_end_kib), growth,
               r.warm_requests == 0
                   ? 0.0
                   : static_cast<double>(growth) * 1024 / static_cast<double>(r.warm_requests),
               r.rss_flat() ? "flat" : "GROWING");
  if (r.seconds > 0) {
    std::fprintf(out, "throughput:          %.0f requests/s (%.1f s in all)\n",
                 static_cast<double>(r.completed) / r.seconds, r.seconds);
  }
  if (r.deadline_reached) std::fprintf(out, "deadline reached:    the run was cut short\n");
  if (judge_rss) {
    std::fprintf(out, "%s\n",
                 r.passed()     ? "PASSED"
                 : r.isolated() ? "FAILED: the resident set grows"
                                : "FAILED: isolation");
  } else {
    std::fprintf(out, "isolation:           %s\n", r.isolated() ? "PASSED" : "FAILED");
  }
}

}  // namespace ucm_soak
