// SPDX-License-Identifier: MIT
// Tests of ucm/manager.hpp: ContextManager registration, building, run_all, enter_all,
// clear_all, errors and concurrent registration.
#include "ucm/manager.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "ucm/scope.hpp"

using ucm::ContextFrame;
using ucm::ContextManager;
using ucm::ContextVariable;
using ucm_test::Failures;

namespace {
struct Request {
  std::string trace;
  std::string user;
  std::string tenant;
};
}  // namespace

TEST_CASE("registering contexts chains and is visible through has_context and names", "[manager]") {
  ContextVariable<std::string> trace;
  ContextVariable<std::string> user;
  ContextManager<Request> m;
  CHECK_FALSE(m.has_context("trace"));
  m.register_context("trace", trace, [](const Request& r) {
     return r.trace;
   }).register_context("user", user, [](const Request& r) { return r.user; });
  CHECK(m.has_context("trace"));
  CHECK(m.has_context("user"));
  CHECK_FALSE(m.has_context("tenant"));
  CHECK(m.names() == std::vector<std::string>{"trace", "user"});
  CHECK(m.unregister("trace"));
  CHECK_FALSE(m.unregister("trace"));
  CHECK_FALSE(m.has_context("trace"));
  CHECK(m.names() == std::vector<std::string>{"user"});
}

TEST_CASE("get_context finds a variable by name and reports a type mismatch clearly",
          "[manager][errors]") {
  ContextVariable<std::string> user;
  ContextManager<Request> m;
  m.register_context("user", user, [](const Request& r) { return r.user; });
  CHECK(&m.get_context<std::string>("user") == &user);
  CHECK_THROWS_AS(m.get_context<int>("user"), ucm::context_error);
  CHECK_THROWS_WITH(m.get_context<int>("user"), Catch::Contains("context 'user' holds"));
  CHECK_THROWS_WITH(m.get_context<std::string>("nobody"),
                    Catch::Contains("no context named 'nobody'"));
}

TEST_CASE("a name registered twice or a variable under two names is rejected",
          "[manager][errors]") {
  ContextVariable<std::string> user;
  ContextVariable<std::string> other;
  ContextManager<Request> m;
  m.register_context("user", user, [](const Request& r) { return r.user; });
  CHECK_THROWS_WITH(m.register_context("user", other, [](const Request&) { return std::string(); }),
                    Catch::Contains("already registered"));
  CHECK_THROWS_WITH(m.register_context("alias", user, [](const Request&) { return std::string(); }),
                    Catch::Contains("already registered as 'user'"));
  CHECK(m.names() == std::vector<std::string>{"user"});  // unchanged by the failures
  // The same variable may belong to another manager.
  ContextManager<Request> second;
  second.register_context("alias", user, [](const Request& r) { return r.user + "!"; });
  CHECK(second.run_all(Request{"t", "u", "x"}, [&] { return *user.get(); }) == "u!");
}

TEST_CASE("run_all runs fn in one window holding every context and restores after",
          "[manager][run]") {
  ContextVariable<std::string> trace;
  ContextVariable<std::string> user;
  ContextVariable<std::string> tenant{"no-tenant"};
  ContextVariable<int> unrelated;
  ContextManager<Request> m;
  m.register_context("trace", trace, [](const Request& r) { return r.trace; })
      .register_context("user", user, [](const Request& r) { return r.user; })
      .register_context("tenant", tenant, [](const Request& r) { return r.tenant; });
  const Request request{"t-1", "ada", "acme"};
  unrelated.run(5, [&] {
    const std::string seen = m.run_all(
        request,
        [&](const std::string& suffix) {
          CHECK(*unrelated.get() == 5);
          CHECK(ContextFrame::current().size() == 4);  // one frame: 3 contexts + the outer one
          CHECK(*trace.get_active() == "t-1");
          return *trace.get() + "/" + *user.get() + "/" + *tenant.get() + suffix;
        },
        std::string("!"));
    CHECK(seen == "t-1/ada/acme!");
  });
  CHECK(trace.get() == nullptr);
  CHECK(*tenant.get() == "no-tenant");
  CHECK_THROWS_AS(m.run_all(request, [] { throw std::runtime_error("handler"); }),
                  std::runtime_error);
  CHECK(user.get() == nullptr);
}

TEST_CASE("builders run in registration order and read earlier stores through the view",
          "[manager][order]") {
  ContextVariable<std::string> database;
  ContextVariable<std::string> tenant;
  std::vector<std::string> order;
  ContextManager<Request> m;
  m.register_context("database", database, [&](const Request& r) {
     order.push_back("database");
     return "db-of-" + r.tenant;
   }).register_context("tenant", tenant, [&](const Request& r, const ucm::BuildView& built) {
    order.push_back("tenant");
    const std::string* db = built.get(database);  // registered before: built already
    return r.tenant + "@" + (db ? *db : "none");
  });
  const ContextFrame frame = m.build(Request{"", "", "acme"});
  CHECK(order == std::vector<std::string>{"database", "tenant"});
  CHECK(*frame.get(tenant) == "acme@db-of-acme");
  CHECK(*frame.get(database) == "db-of-acme");
  CHECK(tenant.get() == nullptr);  // build does not run anything
}

namespace {
/// Code a builder calls that knows nothing of the build: it reads the context.
std::string database_for_current_tenant(const ContextVariable<std::string>& tenant) {
  const std::string* t = tenant.get();
  return t != nullptr ? "db-of-" + *t : "no tenant";
}
}  // namespace

TEST_CASE("a builder and the code it calls read the stores built before it through get()",
          "[manager][order]") {
  ContextVariable<std::string> tenant;
  ContextVariable<std::string> database;
  ContextVariable<std::string> both;
  ContextManager<Request> m;
  m.register_context("tenant", tenant, [](const Request& r) { return r.tenant; })
      .register_context("database", database,
                        [&](const Request&) { return database_for_current_tenant(tenant); })
      .register_context("both", both,
                        [&](const Request&) { return *tenant.get() + "/" + *database.get(); });

  const ContextFrame frame = m.build(Request{"", "", "acme"});
  CHECK(*frame.get(database) == "db-of-acme");
  CHECK(*frame.get(both) == "acme/db-of-acme");
  CHECK(tenant.get() == nullptr);

  m.run_all(Request{"", "", "globex"}, [&] {
    CHECK(*database.get() == "db-of-globex");
    CHECK(*both.get() == "globex/db-of-globex");
  });

  tenant.run("outer", [&] {
    m.enter_all(Request{"", "", "initech"});
    CHECK(*database.get() == "db-of-initech");
    CHECK(*both.get() == "initech/db-of-initech");
  });
  CHECK(tenant.get() == nullptr);
}

TEST_CASE("a builder that throws after earlier stores were built leaves the slots as they were",
          "[manager][errors]") {
  ContextVariable<ucm_test::Tracked> first;
  ContextVariable<std::string> second;
  ContextVariable<int> outer;
  std::string second_saw;
  ContextManager<Request> m;
  m.register_context("first", first, [](const Request& r) {
     return ucm_test::Tracked(r.user);
   }).register_context("second", second, [&](const Request& r) {
    second_saw = first.get() != nullptr ? first.get()->text : "nothing";
    outer.enter(-1);  // ends with the builder's window
    if (r.trace.empty()) throw std::invalid_argument("no trace");
    return r.trace;
  });
  const int live_before = ucm_test::Tracked::live;
  outer.run(1, [&] {
    const ContextFrame before = ContextFrame::current();
    bool ran = false;
    CHECK_THROWS_AS(m.run_all(Request{"", "u", ""}, [&] { ran = true; }), std::invalid_argument);
    CHECK_FALSE(ran);
    CHECK(second_saw == "u");
    CHECK_THROWS_AS(m.enter_all(Request{"", "v", ""}), std::invalid_argument);
    CHECK(second_saw == "v");
    CHECK_THROWS_AS((void)m.build(Request{"", "w", ""}), std::invalid_argument);
    CHECK(ContextFrame::current() == before);
    CHECK(first.get() == nullptr);
    CHECK(*outer.get() == 1);
    CHECK(ucm_test::Tracked::live == live_before);

    m.run_all(Request{"t", "x", ""}, [&] {
      CHECK(first.get()->text == "x");
      CHECK(*second.get() == "t");
      CHECK(*outer.get() == 1);  // the builder's `enter` did not reach the handler
    });
  });
  CHECK(ucm_test::Tracked::live == live_before);
}

TEST_CASE("a frame a builder captures keeps the stores it shows alive", "[manager][lifetime]") {
  ContextVariable<ucm_test::Tracked> first;
  ContextVariable<ucm_test::Tracked> second;
  ContextFrame captured;
  ContextManager<Request> m;
  m.register_context("first", first, [](const Request& r) {
     return ucm_test::Tracked(r.user);
   }).register_context("second", second, [&](const Request& r) {
    captured = ContextFrame::current();
    if (r.trace.empty()) throw std::invalid_argument("no trace");
    return ucm_test::Tracked(r.trace);
  });
  const int live_before = ucm_test::Tracked::live;
  m.run_all(Request{"t", "u", ""}, [] {});
  REQUIRE(captured.get(first) != nullptr);
  CHECK(captured.get(first)->text == "u");
  CHECK(captured.get(second) == nullptr);
  CHECK_THROWS_AS(m.run_all(Request{"", "v", ""}, [] {}), std::invalid_argument);
  REQUIRE(captured.get(first) != nullptr);
  CHECK(captured.get(first)->text == "v");  // the build failed, the captured frame is intact
  captured = ContextFrame();
  CHECK(ucm_test::Tracked::live == live_before);
}

TEST_CASE("a builder reading a context registered after it sees the outer context's value",
          "[manager][order]") {
  ContextVariable<std::string> first;
  ContextVariable<std::string> second;
  ContextManager<Request> m;
  m.register_context("first", first, [&](const Request&, const ucm::BuildView& built) {
     const std::string* later = built.get(second);
     return later ? "saw " + *later : std::string("saw nothing");
   }).register_context("second", second, [](const Request& r) { return r.user; });
  second.run("outer", [&] {
    m.run_all(Request{"", "inner", ""}, [&] {
      CHECK(*first.get() == "saw outer");
      CHECK(*second.get() == "inner");
    });
  });
}

TEST_CASE("a builder that throws applies nothing and leaks nothing", "[manager][errors][leak]") {
  const int live_before = ucm_test::Tracked::live;
  {
    ContextVariable<ucm_test::Tracked> a;
    ContextVariable<ucm_test::Tracked> b;
    ContextManager<Request> m;
    m.register_context("a", a, [](const Request&) {
       return ucm_test::Tracked("a");
     }).register_context("b", b, [](const Request& r) {
      if (r.user.empty()) throw std::invalid_argument("no user");
      return ucm_test::Tracked(r.user);
    });
    bool ran = false;
    CHECK_THROWS_AS(m.run_all(Request{}, [&] { ran = true; }), std::invalid_argument);
    CHECK_FALSE(ran);
    CHECK(a.get() == nullptr);
    CHECK(ucm_test::Tracked::live == live_before);
    m.run_all(Request{"", "u", ""}, [&] { CHECK(b.get()->text == "u"); });
  }
  CHECK(ucm_test::Tracked::live == live_before);
}

TEST_CASE("enter_all sets every context for the rest of the window, clear_all unbinds them",
          "[manager][enter]") {
  ContextVariable<std::string> user{"anonymous"};
  ContextVariable<std::string> trace;
  ContextVariable<int> unrelated;
  ContextManager<Request> m;
  m.register_context("user", user, [](const Request& r) {
     return r.user;
   }).register_context("trace", trace, [](const Request& r) { return r.trace; });
  const ContextFrame inherited = ContextFrame{}.with(trace, "inherited-trace").with(unrelated, 1);
  inherited.inherit([&] {
    unrelated.run(2, [&] {
      m.enter_all(Request{"t", "ada", ""});
      CHECK(*user.get() == "ada");
      CHECK(*trace.get_active() == "t");
      m.clear_all();
      CHECK(*user.get() == "anonymous");  // back to the default
      CHECK_FALSE(user.is_bound());
      CHECK(trace.get() == nullptr);  // hidden, even though the inherited frame has it
      CHECK(*unrelated.get() == 2);   // not registered: kept
    });
    CHECK(*trace.get() == "inherited-trace");  // the window's exit undid both
  });
}

TEST_CASE("run_all from 8 threads while a ninth registers and unregisters", "[manager][threads]") {
  ContextVariable<int> id;
  ContextVariable<std::string> user;
  ContextVariable<int> churn;
  ContextManager<int> m;
  m.register_context("id", id, [](int r) { return r; }).register_context("user", user, [](int r) {
    return "user-" + std::to_string(r);
  });
  std::atomic<bool> stop{false};
  Failures failures;
  std::thread writer([&] {
    int i = 0;
    while (!stop) {
      m.register_context("churn", churn, [](int r) { return -r; });
      EXPECT(failures, m.has_context("churn"));
      EXPECT(failures, m.unregister("churn"));
      ++i;
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const int r = t * 100000 + i;
        m.run_all(r, [&] {
          EXPECT(failures, *id.get() == r && *user.get() == "user-" + std::to_string(r));
          EXPECT(failures, churn.get() == nullptr || *churn.get() == -r);
        });
      }
    });
  }
  for (auto& r : readers) r.join();
  stop = true;
  writer.join();
  CHECK_NO_FAILURES(failures);
}

namespace {
/// Counts constructions at an address not aligned for the type.
struct alignas(64) Wide {
  static inline std::atomic<int> misaligned{0};
  int n;
  explicit Wide(int value) : n(value) { check(); }
  Wide(const Wide& other) : n(other.n) { check(); }
  Wide(Wide&& other) noexcept : n(other.n) { check(); }
  Wide& operator=(const Wide&) = delete;
  ~Wide() = default;
  void check() const {
    if (reinterpret_cast<std::uintptr_t>(this) % alignof(Wide) != 0) ++misaligned;
  }
};

/// Builds at a stack depth that depends on Pad, so that a buffer on the stack lands at several
/// alignments.
template <std::size_t Pad>
[[gnu::noinline]] int wide_value(const ContextManager<int>& m, const ContextVariable<Wide>& w) {
  volatile unsigned char pad[Pad];
  pad[0] = 1;
  return m.run_all(7, [&] { return w.get()->n; }) + pad[0] - 1;
}
}  // namespace

TEST_CASE("values aligned beyond max_align_t are built at aligned addresses",
          "[manager][alignment]") {
  ContextVariable<char> tag;
  ContextVariable<Wide> wide;
  ContextVariable<std::array<char, 600>> big;  // a block of another size class
  ContextManager<int> small;
  small.register_context("tag", tag, [](int) { return 'x'; })
      .register_context("wide", wide, [](int p) { return Wide(p); });
  ContextManager<int> large;
  large.register_context("tag", tag, [](int) { return 'x'; })
      .register_context("big", big, [](int) { return std::array<char, 600>{}; })
      .register_context("wide", wide, [](int p) { return Wide(p); });
  Wide::misaligned = 0;
  for (const ContextManager<int>* m : {&small, &large}) {
    CHECK(wide_value<16>(*m, wide) == 7);
    CHECK(wide_value<32>(*m, wide) == 7);
    CHECK(wide_value<48>(*m, wide) == 7);
    CHECK(wide_value<80>(*m, wide) == 7);
  }
  CHECK(Wide::misaligned == 0);
}
