// SPDX-License-Identifier: MIT
// ucm used from a shared library built with hidden visibility (plugin.cpp): the library and the
// program share one set of slots, one run queue, one variable id counter and one misuse
// handler. Without UCM_SHARED_STATE each would have its own copy, and context set on one side
// of the boundary would be invisible on the other.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>

#include "shared_library/plugin.hpp"
#include "ucm/misuse.hpp"
#include "ucm/propagation/w3c.hpp"
#include "ucm/scope.hpp"
#include "ucm/task.hpp"
#include "ucm/variable.hpp"
#include "ucm/with.hpp"

namespace {
const ucm::ContextVariable<int> program_variable;
std::atomic<int> seen_in_callback{0};
std::atomic<int> reports{0};
void count_report(const char*) noexcept { ++reports; }
}  // namespace

TEST_CASE("the library sees values set in the program", "[shared-library]") {
  CHECK(plugin::get(program_variable) == -1);
  program_variable.run(7, [] { CHECK(plugin::get(program_variable) == 7); });
  CHECK(plugin::get(program_variable) == -1);
}

TEST_CASE("the program sees values set in the library", "[shared-library]") {
  seen_in_callback = 0;
  plugin::run(program_variable, 9, [] { seen_in_callback = program_variable.value_or(-1); });
  CHECK(seen_in_callback == 9);
  CHECK(program_variable.get() == nullptr);
}

TEST_CASE("variables made in the library and in the program never share an id",
          "[shared-library]") {
  const ucm::ContextVariable<int>& library_variable = plugin::variable();
  const ucm::ContextVariable<int> mine;
  ucm::with(program_variable, 1).with(library_variable, 2).with(mine, 3).run([&] {
    CHECK(program_variable.value_or(-1) == 1);
    CHECK(plugin::get(library_variable) == 2);
    CHECK(mine.value_or(-1) == 3);
  });
}

TEST_CASE("misuse in the library reaches the program's handler", "[shared-library][misuse]") {
  reports = 0;
  const ucm::misuse_handler previous = ucm::set_misuse_handler(&count_report);
  // On a thread of its own: the misordered scopes' frames are kept until it exits.
  std::thread([] { plugin::close_scopes_out_of_order(program_variable); }).join();
  ucm::set_misuse_handler(previous);
  CHECK(reports >= 1);  // the first scope to close reports; so may the second (see misuse_test)
}

TEST_CASE("a Task made in the library runs in the program's context", "[shared-library][task]") {
  const int result =
      program_variable.run(41, [] { return ucm::sync_wait(plugin::task(program_variable)); });
  // The child saw 41 and entered 42; the parent saw 42 through the return path.
  CHECK(result == 41 * 1000 + 42);
  CHECK(program_variable.get() == nullptr);
}

TEST_CASE("a Task made in the library, run on another thread", "[shared-library][task]") {
  int result = 0;
  std::thread([&] {
    result = program_variable.run(5, [] { return ucm::sync_wait(plugin::task(program_variable)); });
  }).join();
  CHECK(result == 5 * 1000 + 6);
}

namespace {
const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
std::string seen_baggage;
void read_baggage_in_program() {
  const ucm::w3c::Baggage* b = ucm::w3c::baggage.get();
  const std::string* user = b != nullptr ? b->get("user") : nullptr;
  seen_baggage = user != nullptr ? *user : "none";
}
}  // namespace

TEST_CASE("inject in the library sends what extract in the program bound",
          "[shared-library][w3c]") {
  const std::map<std::string, std::string> received{
      {"traceparent", traceparent}, {"tracestate", "k=v"}, {"baggage", "user=alice"}};
  const ucm::ContextFrameScope scope(ucm::w3c::extract(received));
  std::map<std::string, std::string> sent;
  plugin::inject(sent);
  CHECK(sent["traceparent"] == traceparent);
  CHECK(sent["tracestate"] == "k=v");
  CHECK(sent["baggage"] == "user=alice");
}

TEST_CASE("the program reads what extract in the library bound", "[shared-library][w3c]") {
  seen_baggage.clear();
  plugin::extract_and_run({{"baggage", "user=bob"}}, &read_baggage_in_program);
  CHECK(seen_baggage == "bob");
}

TEST_CASE("a baggage codec registered on one side of the library boundary serves the other",
          "[shared-library][w3c][codec]") {
  plugin::register_codec(program_variable, "tenant");
  std::map<std::string, std::string> sent;
  program_variable.run(7, [&] { ucm::w3c::inject(sent); });  // in the program
  CHECK(sent["baggage"] == "tenant=7");
  const ucm::ContextFrame extracted = ucm::w3c::extract(
      ucm::ContextFrame(), std::map<std::string, std::string>{{"baggage", "tenant=8"}});
  CHECK(extracted.get(program_variable) != nullptr);
  CHECK(plugin::get(program_variable) == -1);
  plugin::unregister_codec();
  {
    const auto registration = ucm::w3c::register_baggage_codec(program_variable, "tenant");
    sent.clear();
    program_variable.run(9, [&] { plugin::inject(sent); });  // in the library
    CHECK(sent["baggage"] == "tenant=9");
  }
}
