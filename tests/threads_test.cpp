// SPDX-License-Identifier: MIT
// Concurrency tests of the core: isolation between concurrent requests on a real thread pool,
// enter not leaking between tasks, and nothing leaking at thread exit.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "thread_pool.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;

TEST_CASE("a task that enters a value does not leak it into the next task on that pool thread",
          "[threads][enter]") {
  ContextVariable<int> v;
  ucm_test::ThreadPool pool(1);
  ucm_test::Failures failures;
  for (int i = 0; i < 1000; ++i) {
    v.run(i, [&] {
      pool.post(ContextFrame::bind([&, i] {
        EXPECT(failures, *v.get() == i);
        v.enter(-1);
      }));
    });
    pool.post([&] { EXPECT(failures, v.get() == nullptr); });  // posted without context
  }
  pool.wait_idle();
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("8 threads x 10,000 tasks never see another request's values", "[threads][stress]") {
  struct Request {
    int id;
    std::string user;
  };
  ContextVariable<Request> request;
  ContextVariable<int> step;
  ContextVariable<bool> draft{false};
  constexpr int threads = 8;
  constexpr int tasks_per_thread = 10'000;
  ucm_test::ThreadPool pool(4);
  ucm_test::Failures failures;
  std::atomic<int> ran{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < tasks_per_thread; ++i) {
        const int id = t * tasks_per_thread + i;
        ucm::with(request, Request{id, "user-" + std::to_string(id)})
            .with(draft, id % 2 == 0)
            .run([&] {
              pool.post(ContextFrame::bind([&, id] {
                ++ran;
                const Request* r = request.get();
                if (!EXPECT(failures, r != nullptr)) return;
                EXPECT(failures, r->id == id && r->user == "user-" + std::to_string(id));
                EXPECT(failures, *draft.get() == (id % 2 == 0) && step.get() == nullptr);
                step.run(id, [&] {
                  EXPECT(failures,
                         *step.get() == id && request.get() != nullptr && request.get()->id == id);
                  if (id % 3 == 0) step.enter(-id);
                  EXPECT(failures, id % 3 != 0 || *step.get() == -id);
                });
                EXPECT(failures, step.get() == nullptr && request.get_inherited() != nullptr &&
                                     request.get_inherited()->id == id &&
                                     request.get_active() == nullptr);
              }));
            });
      }
    });
  }
  for (auto& p : producers) p.join();
  pool.wait_idle();
  CHECK(ran == threads * tasks_per_thread);
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("bind captured on one thread runs with its values on another, both ways",
          "[threads][bind]") {
  ContextVariable<std::string> v;
  ucm_test::ThreadPool pool(2);
  ucm_test::Failures failures;
  for (int i = 0; i < 2000; ++i) {
    v.run(std::to_string(i), [&] {
      pool.post(ContextFrame::bind([&, i] {
        EXPECT(failures, *v.get() == std::to_string(i));
        // and back: a continuation posted from the pool thread carries the pool task's values
        v.run("nested-" + std::to_string(i), [&] {
          pool.post(ContextFrame::bind(
              [&, i] { EXPECT(failures, *v.get() == "nested-" + std::to_string(i)); }));
        });
      }));
    });
  }
  pool.wait_idle();
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("a thread that exits with entered values leaks nothing", "[threads][leak]") {
  const int live_before = ucm_test::Tracked::live;
  {
    ContextVariable<ucm_test::Tracked> t;
    ContextVariable<int> n;
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        t.enter(ucm_test::Tracked("top-" + std::to_string(i)));
        n.enter(i);
        t.run(ucm_test::Tracked("inner"), [&] { t.enter(ucm_test::Tracked("entered")); });
        // exits without clear()
      });
    }
    for (auto& th : threads) th.join();
  }
  CHECK(ucm_test::Tracked::live == live_before);
}

TEST_CASE("frames rebuilt and values lent across 4 threads are released exactly once",
          "[threads][leak]") {
  const int live_before = ucm_test::Tracked::live;
  {
    ContextVariable<ucm_test::Tracked> t;
    ContextVariable<int> n;
    std::mutex mutex;
    ContextFrame shared = ContextFrame{}.with(n, 0);
    ucm_test::Failures failures;
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
      threads.emplace_back([&, k] {
        for (int i = 0; i < 2000; ++i) {
          ContextFrame mine;
          {
            std::lock_guard lock(mutex);
            mine = shared;
          }
          // Grow past max_delta_depth so that complete frames borrow from deltas, lend one
          // value to a callable, and publish the result for the other threads to build on.
          mine = mine.with(t, ucm_test::Tracked(std::to_string(k))).with(n, i);
          auto bound = mine.run([&] { return t.bind([&] { return t.get()->text; }); });
          mine.run([&] {
            t.enter(ucm_test::Tracked("entered"));
            n.enter(-i);
          });
          {
            std::lock_guard lock(mutex);
            shared = mine;
          }
          mine = ContextFrame{};
          EXPECT(failures, bound() == std::to_string(k));
        }
      });
    }
    for (std::thread& th : threads) th.join();
    CHECK_NO_FAILURES(failures);
    shared = ContextFrame{};
  }
  CHECK(ucm_test::Tracked::live == live_before);
}
