// SPDX-License-Identifier: MIT
// Tests of ucm/channel.hpp: WindowChannel (subscribe, has_subscribers, publish, bind_store,
// run_stores), and subscribing under concurrent publishing. TracingChannel's are in
// tracing_channel_test.cpp. Catch2 v2 is not thread-safe: code on other threads records into a
// failure log or atomics, and the main thread checks them.
#include "ucm/channel.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;
using ucm::Subscription;
using ucm::WindowChannel;
using ucm_test::Failures;
using ucm_test::MisuseCounter;

namespace {

auto& reports = MisuseCounter::reports;

std::string text_of(const int* v) { return v == nullptr ? "-" : std::to_string(*v); }

}  // namespace

// ---- WindowChannel -----------------------------------------------------------------------------

TEST_CASE("a channel without subscribers has none, and publishing to it does nothing",
          "[channel]") {
  WindowChannel<int> channel;
  CHECK_FALSE(channel.has_subscribers());
  channel.publish(1);
  CHECK(channel.run_stores(
            2, [](int x) { return x * 21; }, 2) == 42);
}

TEST_CASE("a channel can be constant-initialised, for use during static initialisation",
          "[channel]") {
  static constinit WindowChannel<int> early;
  CHECK_FALSE(early.has_subscribers());
}

TEST_CASE("subscribers receive every message in subscription order until unsubscribed",
          "[channel]") {
  WindowChannel<std::string> channel;
  std::vector<std::string> seen;
  Subscription a = channel.subscribe([&](const std::string& m) { seen.push_back("a:" + m); });
  CHECK(channel.has_subscribers());
  {
    Subscription b = channel.subscribe([&](const std::string& m) { seen.push_back("b:" + m); });
    channel.publish("one");
  }
  channel.publish("two");
  a.reset();
  CHECK_FALSE(a);
  CHECK_FALSE(channel.has_subscribers());
  channel.publish("three");
  CHECK(seen == std::vector<std::string>{"a:one", "b:one", "a:two"});
}

TEST_CASE("a subscription is move-only and may be kept in a container", "[channel]") {
  WindowChannel<int> channel;
  int sum = 0;
  std::vector<Subscription> subs;
  for (int i = 1; i <= 3; ++i) {
    subs.push_back(channel.subscribe([&sum, i](const int& m) { sum += i * m; }));
  }
  Subscription moved = std::move(subs[0]);
  CHECK_FALSE(subs[0]);
  CHECK(moved);
  channel.publish(10);
  CHECK(sum == 60);
  subs.clear();
  channel.publish(10);
  CHECK(sum == 70);  // only `moved` is left
  moved = Subscription();
  CHECK_FALSE(channel.has_subscribers());
}

TEST_CASE("a bound store makes the channel active and ends with its subscription",
          "[channel][store]") {
  WindowChannel<int> channel;
  ContextVariable<int> v;
  {
    Subscription store = channel.bind_store(v, [](const int& m) { return m + 1; });
    CHECK(channel.has_subscribers());
    CHECK(channel.run_stores(41, [&] { return *v.get(); }) == 42);
  }
  CHECK_FALSE(channel.has_subscribers());
  CHECK(channel.run_stores(41, [&] { return v.get() == nullptr; }));
}

TEST_CASE("run_stores sets every store in one call window, and publishes inside it first",
          "[channel][store]") {
  WindowChannel<std::string> channel;
  ContextVariable<std::string> id;
  ContextVariable<int> length;
  ContextVariable<int> outer;
  std::vector<std::string> order;
  ContextFrame seen_by_subscriber;
  Subscription s1 = channel.bind_store(id, [](const std::string& m) { return "id-" + m; });
  Subscription s2 =
      channel.bind_store(length, [](const std::string& m) { return static_cast<int>(m.size()); });
  Subscription sub = channel.subscribe([&](const std::string& m) {
    order.push_back("subscriber " + m + " " + *id.get());
    seen_by_subscriber = ContextFrame::current();
  });
  outer.run(7, [&] {
    const ContextFrame before = ContextFrame::current();
    const int result = channel.run_stores(
        "abc",
        [&](int k) {
          order.push_back("fn " + *id.get() + " " + std::to_string(*length.get()));
          // One window: the subscriber saw the very frame the function runs in, which holds
          // both stores and everything outside.
          CHECK(ContextFrame::current() == seen_by_subscriber);
          CHECK(*ContextFrame::current().get(id) == "id-abc");
          CHECK(*ContextFrame::current().get(length) == 3);
          CHECK(*outer.get() == 7);
          return k * 2;
        },
        21);
    CHECK(result == 42);
    CHECK(ContextFrame::current() == before);
    CHECK(id.get() == nullptr);
  });
  CHECK(order == std::vector<std::string>{"subscriber abc id-abc", "fn id-abc 3"});
}

TEST_CASE("run_stores forwards arguments and returns references", "[channel][store]") {
  WindowChannel<int> channel;
  ContextVariable<int> v;
  Subscription store = channel.bind_store(v, [](const int& m) { return m; });
  int target = 1;
  int& ref = channel.run_stores(
      5, [](int& t, std::unique_ptr<int> p) -> int& { return t += *p; }, target,
      std::make_unique<int>(2));
  CHECK(&ref == &target);
  CHECK(target == 3);
}

TEST_CASE("a store's transform runs in the caller's context", "[channel][store]") {
  WindowChannel<int> channel;
  ContextVariable<int> span;
  std::vector<std::string> parents;
  Subscription store = channel.bind_store(span, [&](const int& m) {
    parents.push_back(text_of(span.get_active()));  // the caller's span: child-of
    return m;
  });
  span.run(1, [&] { channel.run_stores(2, [&] { channel.run_stores(3, [] {}); }); });
  CHECK(parents == std::vector<std::string>{"1", "2"});
}

TEST_CASE("the message of a WindowChannel<M&> is passed by non-const reference", "[channel]") {
  WindowChannel<std::string&> channel;
  Subscription s = channel.subscribe([](std::string& m) { m += " seen"; });
  std::string m = "select 1";
  channel.publish(m);
  CHECK(m == "select 1 seen");
}

TEST_CASE("a subscriber or a transform that throws never reaches the publisher",
          "[channel][misuse]") {
  const MisuseCounter guard;
  WindowChannel<int> channel;
  ContextVariable<int> v;
  ContextVariable<int> w;
  int after = 0;
  Subscription bad = channel.subscribe([](const int&) { throw std::runtime_error("bug"); });
  Subscription good = channel.subscribe([&](const int& m) { after += m; });
  channel.publish(1);
  CHECK(reports == 1);
  CHECK(after == 1);  // the next subscriber still ran

  Subscription store_v = channel.bind_store(v, [](const int& m) { return m; });
  Subscription store_w = channel.bind_store(w, [](const int& m) -> int {
    if (m > 1) throw std::runtime_error("bug");
    return m;
  });
  const bool unset =
      channel.run_stores(2, [&] { return v.get() == nullptr && w.get() == nullptr; });
  CHECK(unset);         // no store is set (one frame, all or nothing)
  CHECK(reports == 3);  // the transform, then the subscriber again
  CHECK(after == 3);
}

TEST_CASE("a subscriber may unsubscribe itself and others while it is being called", "[channel]") {
  WindowChannel<int> channel;
  std::vector<std::string> seen;
  Subscription second;
  Subscription first = channel.subscribe([&](const int& m) {
    seen.push_back("first " + std::to_string(m));
    first.reset();   // itself: not waited for (it is running), freed later
    second.reset();  // a later one in the same publish: not called any more
  });
  second = channel.subscribe([&](const int& m) { seen.push_back("second " + std::to_string(m)); });
  Subscription third = channel.subscribe([&](const int& m) {
    seen.push_back("third " + std::to_string(m));
    Subscription added = channel.subscribe([&](const int&) { seen.push_back("added"); });
  });
  channel.publish(1);
  channel.publish(2);
  CHECK(seen == std::vector<std::string>{"first 1", "third 1", "third 2"});
}

TEST_CASE("a subscription may outlive its channel", "[channel]") {
  Subscription sub;
  Subscription store;
  ContextVariable<int> v;
  {
    WindowChannel<int> channel;
    sub = channel.subscribe([](const int&) {});
    store = channel.bind_store(v, [](const int& m) { return m; });
  }
  sub.reset();  // frees its node only
  CHECK_FALSE(sub);
}

// ---- concurrency -------------------------------------------------------------------------------

TEST_CASE(
    "subscribing and unsubscribing while other threads publish is safe, and a removed "
    "subscriber is never called once its subscription is gone",
    "[channel][threads]") {
  WindowChannel<int> channel;
  ContextVariable<int> v;
  std::atomic<bool> stop{false};
  std::atomic<long> published{0};
  Failures failures;

  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (t == 0) {
          channel.publish(1);
        } else {
          // Stores and subscribers together: the value is the transform of the message.
          const int seen = channel.run_stores(t, [&] { return v.get() == nullptr ? t : *v.get(); });
          EXPECT(failures, seen == t);
        }
        published.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  for (int round = 0; round < 300; ++round) {
    // State that the subscriber uses, destroyed right after it unsubscribes: under
    // AddressSanitizer a late call is a use after free, and `alive` catches it too.
    struct State {
      std::atomic<bool> alive{true};
      std::atomic<long> calls{0};
    };
    auto state = std::make_unique<State>();
    State* s = state.get();
    {
      Subscription sub = channel.subscribe([s, &failures](const int&) {
        EXPECT(failures, s->alive.load());
        s->calls.fetch_add(1, std::memory_order_relaxed);
      });
      Subscription store = channel.bind_store(v, [](const int& m) { return m; });
      const long start = published.load();
      while (published.load() < start + 3) std::this_thread::yield();
    }
    s->alive = false;
    state.reset();
  }
  stop = true;
  for (auto& p : publishers) p.join();
  CHECK_NO_FAILURES(failures);
  CHECK_FALSE(channel.has_subscribers());
}

TEST_CASE("a subscriber that unsubscribes while other threads publish does not deadlock",
          "[channel][threads]") {
  WindowChannel<int> a;
  WindowChannel<int> b;
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  // Each publisher's subscriber unsubscribes from the other channel, inside a publish: writers
  // inside a publish never wait, so no cycle can form.
  auto worker = [&](WindowChannel<int>& mine, WindowChannel<int>& other) {
    while (!stop.load()) {
      Subscription on_other = other.subscribe([](const int&) {});
      Subscription sub = mine.subscribe([&](const int&) { on_other.reset(); });
      mine.publish(1);
      ++rounds;
    }
  };
  std::thread t1(worker, std::ref(a), std::ref(b));
  std::thread t2(worker, std::ref(b), std::ref(a));
  while (rounds.load() < 2000) std::this_thread::yield();
  stop = true;
  t1.join();
  t2.join();
  CHECK_FALSE(a.has_subscribers());
  CHECK_FALSE(b.has_subscribers());
}
