// SPDX-License-Identifier: MIT
// ucm used from a shared library built with hidden visibility (plugin.cpp): the library and the
// program share one set of slots, one run queue, one variable id counter and one misuse
// handler. Without UCM_SHARED_STATE each would have its own copy, and context set on one side
// of the boundary would be invisible on the other.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "shared_library/plugin.hpp"
#include "ucm/misuse.hpp"
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
