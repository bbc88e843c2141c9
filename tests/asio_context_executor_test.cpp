// SPDX-License-Identifier: MIT
// tests/asio_context_executor_test.cpp: ContextExecutor (ucm/asio/context_executor.hpp,
// ucm/boost_asio/context_executor.hpp): an executor adaptor that runs what is submitted in the
// context of its submission.
// Built as asio_test against standalone Asio and as boost_asio_test against Boost.Asio
// (see tests/asio_support.hpp).
#if defined(UCM_TEST_BOOST_ASIO)
#include "ucm/boost_asio/context_executor.hpp"
#else
#include "ucm/asio/context_executor.hpp"
#endif

#include <catch2/catch.hpp>

#include "asio_support.hpp"

// =============================================================================================
// ContextExecutor
// =============================================================================================

namespace {
using IoExecutor = net::io_context::executor_type;
static_assert(net::execution::executor<ContextExecutor<IoExecutor>>);
static_assert(net::is_executor<ContextExecutor<IoExecutor>>::value);
static_assert(net::execution::executor<ContextExecutor<net::strand<IoExecutor>>>);
static_assert(net::execution::executor<ContextExecutor<net::any_io_executor>>);
static_assert(std::is_convertible_v<ContextExecutor<IoExecutor>, net::any_io_executor>);
static_assert(std::is_nothrow_copy_constructible_v<ContextExecutor<IoExecutor>>);
}  // namespace

TEST_CASE("ContextExecutor wraps an executor like asio::strand does", "[asio][executor]") {
  net::io_context io;
  net::io_context other;
  ContextExecutor executor(io.get_executor());  // CTAD
  static_assert(std::is_same_v<decltype(executor), ContextExecutor<IoExecutor>>);
  CHECK(executor.get_inner_executor() == io.get_executor());
  CHECK(executor == ContextExecutor(io.get_executor()));
  CHECK(executor != ContextExecutor(other.get_executor()));
  CHECK(&net::query(executor, net::execution::context) == &io);
  CHECK(&executor.context() == &io);
  CHECK(net::query(net::require(executor, net::execution::blocking.never),
                   net::execution::blocking) == net::execution::blocking.never);
  auto tracked = net::prefer(executor, net::execution::outstanding_work.tracked);
  static_assert(std::is_same_v<decltype(tracked.get_inner_executor()),
                               decltype(net::prefer(io.get_executor(),
                                                    net::execution::outstanding_work.tracked))>);
  CHECK(net::query(tracked, net::execution::outstanding_work) ==
        net::execution::outstanding_work.tracked);
  net::any_io_executor any = executor;
  CHECK(any.target<ContextExecutor<IoExecutor>>() != nullptr);
  ContextExecutor on_strand(net::make_strand(io));
  CHECK_FALSE(on_strand.running_in_this_thread());
}

TEST_CASE("ContextExecutor post, dispatch, defer and execute run in the context of submission",
          "[asio][executor][threads]") {
  IoThreads threads(4);
  Seen seen;
  ContextExecutor executor(threads.io.get_executor());
  net::any_io_executor any = executor;
  std::allocator<void> allocator;
  constexpr int rounds = 100;
  for (int i = 0; i < rounds; ++i) {
    request_id.run(i, [&, i] {
      auto check = [&seen, i] {
        seen.check(i, seen_id());
        request_id.enter(-1);  // must not leak
      };
      net::post(executor, check);
      net::dispatch(executor, check);
      net::defer(executor, check);
      executor.execute(check);
      net::execution::execute(any, check);
      executor.post(check, allocator);  // the networking-TS model
      executor.dispatch(check, allocator);
      executor.defer(check, allocator);
      // Submitted from an I/O thread, inside another context: captured there.
      net::post(threads.io, [&seen, &executor, i] {
        request_id.run(1000 + i, [&] {
          net::dispatch(executor, [&seen, i] { seen.check(1000 + i, seen_id()); });
          net::post(executor, [&seen, i] { seen.check(1000 + i, seen_id()); });
        });
      });
    });
    net::post(threads.io, [&seen] { EXPECT(seen.failures, slots_empty()); });
  }
  threads.finish();
  CHECK(seen.ran == rounds * 10);
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
}

TEST_CASE("a coroutine spawned on a ContextExecutor starts in the spawner's context",
          "[asio][executor][use_awaitable]") {
  IoThreads threads(2);
  std::atomic<int> started{-5};
  request_id.run(9, [&] {
    net::co_spawn(
        ContextExecutor(threads.io.get_executor()),
        [&]() -> net::awaitable<void> {
          started = seen_id();
          co_return;
        },
        net::detached);
  });
  threads.finish();
  CHECK(started == 9);
}
