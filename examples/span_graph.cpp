// SPDX-License-Identifier: MIT
// The span graph of one request, built by a toy tracer that knows nothing but one
// ucm::ContextVariable holding the current span: the reason the RFC exists.
//
// The request makes a synchronous call, posts a callback to another thread, awaits a child task
// that hops to a thread pool, and joins three branches with ucm::when_all. Every new span asks the
// context two questions:
//   - child-of:     `current_span.get_active()`: a span bound since the running continuation
//                   began (by a call, a scope or `enter`), i.e. the code that is calling us;
//   - follows-from: `ContextFrame::inherited_all()`: the spans that flowed into this continuation
//                   and finished before it: the context a posted callback was scheduled from, the
//                   final span of the task just awaited (the return path), every branch of a
//                   when_all (the merge).
// The tracer takes no parameters and is never told which case it is in. Exits 0 when the graph is
// the one this comment describes.
#include <ucm/task.hpp>
#include <ucm/ucm.hpp>

#include "thread_pool.hpp"

#include <algorithm>
#include <coroutine>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// ---- a toy tracer -------------------------------------------------------------------------------
// The only context it uses: the id of the current span.
inline ucm::ContextVariable<int> current_span;

struct Span {
  int id;
  std::string name;
  int child_of;              // 0: none
  std::vector<int> follows;  // follows-from links
};

class Tracer {
 public:
  /// Starts a span: its links come from the context alone.
  int begin(std::string name) {
    const int* active = current_span.get_active();
    const int parent = active == nullptr ? 0 : *active;
    std::vector<int> follows;
    for (const ucm::ContextFrame& frame : ucm::ContextFrame::inherited_all()) {
      const int* from = frame.get(current_span);
      if (from == nullptr || *from == parent) continue;
      bool seen = false;
      for (int f : follows) seen = seen || f == *from;
      if (!seen) follows.push_back(*from);
    }
    std::lock_guard lock(mutex_);
    const int id = static_cast<int>(spans_.size()) + 1;
    spans_.push_back(Span{id, std::move(name), parent, std::move(follows)});
    return id;
  }

  std::vector<Span> spans() const {
    std::lock_guard lock(mutex_);
    return spans_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Span> spans_;
};

Tracer tracer;

example::ThreadPool pool(3);

// ---- the application: no span is ever passed as a parameter -------------------------------------
void authenticate() {
  // A synchronous call inside the request: child-of the request.
  current_span.run(tracer.begin("authenticate"), [] {});
}

ucm::Task<int> query(std::string table) {
  // `enter` at the top of a task: the span lasts until the task ends, and is what the awaiter
  // inherits afterwards (the return path).
  std::string name = "query ";
  name += table;
  current_span.enter(tracer.begin(std::move(name)));
  co_await pool.schedule();  // the rest runs on a pool thread, with this task's context
  co_return 1;
}

ucm::Task<int> fetch_user() {
  current_span.enter(tracer.begin("fetch_user"));
  co_await pool.schedule();
  co_return co_await query("users");
}

ucm::Task<> handle_request() {
  current_span.enter(tracer.begin("handle_request"));
  authenticate();

  // A callback handed to another thread: a continuation, not a call. It is not a child of the
  // request (get_active() is empty there); it follows from the context it was scheduled in.
  std::thread audit(ucm::ContextFrame::bind([] { (void)tracer.begin("audit (callback)"); }));
  audit.join();

  (void)co_await fetch_user();
  {
    // After the await: child-of the request, follows-from fetch_user (its final context).
    ucm::ContextVariableScope span(current_span, tracer.begin("render_profile"));
  }

  // Three branches at once; each is child-of the request.
  (void)co_await ucm::when_all(query("orders"), query("invoices"), query("settings"));
  // After the join: follows-from every branch (ContextFrame::inherited_all()).
  ucm::ContextVariableScope span(current_span, tracer.begin("respond"));
}

std::string describe(const std::vector<Span>& spans, int id) {
  // Appended piece by piece: g++ 12 at -O3 warns falsely on `"#" + std::string` (-Wrestrict).
  std::string text = "#";
  text += std::to_string(id);
  text += ' ';
  text += spans[static_cast<std::size_t>(id - 1)].name;
  return text;
}

int depth_of(const std::vector<Span>& spans, const Span& s) {
  int depth = 0;
  for (int p = s.child_of; p != 0; p = spans[static_cast<std::size_t>(p - 1)].child_of) ++depth;
  return depth;
}

}  // namespace

int main() {
  ucm::sync_wait(handle_request());

  const std::vector<Span> spans = tracer.spans();
  std::printf("span graph of one request\n");
  std::printf("  indented under its child-of parent (get_active); follows-from: inherited_all\n\n");
  for (const Span& s : spans) {
    std::string line(static_cast<std::size_t>(2 * depth_of(spans, s)), ' ');
    line += describe(spans, s.id);
    if (!s.follows.empty()) {
      line.resize(std::max<std::size_t>(line.size() + 2, 28), ' ');
      line += "follows-from ";
      for (std::size_t i = 0; i < s.follows.size(); ++i) {
        if (i != 0) line += ", ";
        line += describe(spans, s.follows[i]);
      }
    }
    std::printf("  %s\n", line.c_str());
  }

  // What the graph must be: {name, child-of, follows-from}.
  struct Expected {
    const char* name;
    int child_of;
    std::vector<int> follows;
  };
  const std::vector<Expected> expected = {
      {"handle_request", 0, {}},    {"authenticate", 1, {}},
      {"audit (callback)", 0, {1}},  // scheduled from the request: follows-from only
      {"fetch_user", 1, {}},        {"query users", 4, {}},
      {"render_profile", 1, {4}},  // the return path: what fetch_user left in its context
      {"query orders", 1, {4}},    // each branch starts after fetch_user finished
      {"query invoices", 1, {4}},   {"query settings", 1, {4}},
      {"respond", 1, {7, 8, 9}},  // the merge: every branch, in argument order
  };
  bool ok = spans.size() == expected.size();
  for (std::size_t i = 0; ok && i < spans.size(); ++i) {
    ok = spans[i].name == expected[i].name && spans[i].child_of == expected[i].child_of &&
         spans[i].follows == expected[i].follows;
  }
  std::printf("\n%s\n", ok ? "graph as expected" : "UNEXPECTED GRAPH");
  return ok ? 0 : 1;
}
