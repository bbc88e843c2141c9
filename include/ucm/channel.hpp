// SPDX-License-Identifier: MIT
// ucm/channel.hpp: window channels, the RFC's Window Channel and Node's diagnostics_channel.
// A library announces its windows on a WindowChannel<M> or a TracingChannel<M> (five channels
// for one kind of operation: ucm/tracing_channel.hpp, which this header includes); instrumentation
// (tracing, metrics, logging) subscribes, and binds context variables to them, without either
// side depending on the other.
//
// How subscribers are kept
// ------------------------
// A channel publishes an immutable list of its subscribers and bound stores through one atomic
// pointer, null while it has none: `has_subscribers()` and a publish with nobody listening are
// one relaxed load and a branch, with no allocation and no write to shared memory. Subscribing
// or unsubscribing copies the list and publishes the copy (copy on write); the old list is freed
// once no publisher can still be reading it. Publishers announce themselves in one of two
// counters (the epoch they saw), and a writer waits for both to drain after flipping the epoch
// twice, the grace period of userspace RCU: a publisher that started before the change has
// finished, a publisher that starts after it reads the new list. A thread that is itself inside
// a publish (a subscriber that unsubscribes) never waits: its old lists are freed by the next
// writer outside any publish, or with the channel.
#pragma once

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/detail/config.hpp"
#include "ucm/detail/frame_build.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"
#include "ucm/misuse.hpp"
#include "ucm/variable.hpp"

namespace ucm {

template <class M>
class WindowChannel;
template <class M>
class TracingChannel;
class Subscription;

namespace detail {

/// How many channel publishes this thread is inside (any channel). A writer inside one must not
/// wait for publishers to finish: it would wait for itself, or for a thread waiting for it.
UCM_SHARED_STATE inline unsigned& channel_reads() noexcept {
  static thread_local constinit unsigned depth = 0;
  return depth;
}

class ChannelCore;

/// A subscriber or a bound store. Shared by every list that holds it; deleted once it has been
/// removed and no publisher can reach it any more.
struct ChannelNode {
  ChannelNode() noexcept = default;
  ChannelNode(const ChannelNode&) = delete;
  ChannelNode& operator=(const ChannelNode&) = delete;
  virtual ~ChannelNode() = default;

  ChannelCore* channel = nullptr;    // null once the channel is gone: the subscription deletes it
  std::atomic<bool> removed{false};  // set before it leaves the list: no call starts after that
  bool store = false;                // a bound store (else a subscriber)
};

/// One published list: immutable while published. `dropped` is written when it is retired (a
/// field no publisher reads): the removed nodes that the next list no longer holds, deleted with
/// this list.
struct ChannelList {
  std::vector<ChannelNode*> subscribers;
  std::vector<ChannelNode*> stores;
  std::vector<ChannelNode*> dropped;
};

/// The subscriber list of one channel and its reclamation (see the top of this header).
class ChannelCore {
 public:
  constexpr ChannelCore() noexcept = default;
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  /// Nothing may publish on, subscribe to or unsubscribe from a channel while it is destroyed.
  /// Subscriptions that outlive it only free their own node.
  ~ChannelCore() {
    if (ChannelList* list = list_.load(std::memory_order_relaxed)) {
      for (auto* nodes : {&list->subscribers, &list->stores}) {
        for (ChannelNode* n : *nodes) {
          if (n->removed.load(std::memory_order_relaxed)) {
            delete n;  // its subscription is gone (it could not be unlinked: out of memory)
          } else {
            n->channel = nullptr;
          }
        }
      }
      delete list;
    }
    for (ChannelList* list : retired_) free_list(list);
  }

  /// Whether anybody listens: one relaxed load. A hint for publishers (a subscriber added at this
  /// moment on another thread may be missed by this publish, as with any lock-free check).
  [[nodiscard]] bool active() const noexcept {
    return list_.load(std::memory_order_relaxed) != nullptr;
  }

  /// Adds `node` (not yet owned by anybody else). Throws std::bad_alloc and changes nothing if
  /// the new list cannot be built.
  void add(ChannelNode* node) {
    node->channel = this;
    {
      const std::lock_guard lock(list_mutex_);
      replace_list(node);
    }
    if (channel_reads() == 0) reclaim();
  }

  /// Removes `node` and deletes it once no publisher can reach it. Outside any publish on this
  /// thread, returns once no other thread can still be calling it.
  void remove(ChannelNode* node) noexcept {
    node->removed.store(true, std::memory_order_release);
    {
      const std::lock_guard lock(list_mutex_);
      try {
        replace_list(nullptr);
      } catch (...) {
        // Out of memory: it stays in the list, flagged, so nothing calls it; the next change
        // or the channel's destructor frees it.
      }
    }
    if (channel_reads() == 0) reclaim();
  }

  /// A publisher's view of the list: announces itself for as long as it reads it.
  class Read {
   public:
    explicit Read(const ChannelCore& core) noexcept : core_(core) {
      // seq_cst: a writer that unpublished a list and then waited saw this increment, or this
      // load sees the new list (see synchronize).
      epoch_ = core.epoch_.load(std::memory_order_seq_cst);
      core.readers_[epoch_].fetch_add(1, std::memory_order_seq_cst);
      list_ = core.list_.load(std::memory_order_seq_cst);
      ++channel_reads();
    }
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;
    ~Read() {
      --channel_reads();
      // Release: everything this publisher read of the list happens before its reclamation.
      core_.readers_[epoch_].fetch_sub(1, std::memory_order_release);
    }
    /// The list, or nullptr when everybody left in the meantime.
    [[nodiscard]] const ChannelList* list() const noexcept { return list_; }

   private:
    const ChannelCore& core_;
    std::uint32_t epoch_;
    const ChannelList* list_;
  };

 private:
  static void free_list(ChannelList* list) noexcept {
    for (ChannelNode* n : list->dropped) delete n;
    delete list;
  }

  /// Publishes a copy of the list without the removed nodes, plus `added`; retires the old one.
  /// Under list_mutex_. Strong guarantee.
  void replace_list(ChannelNode* added) {
    ChannelList* const old = list_.load(std::memory_order_relaxed);
    auto next = std::make_unique<ChannelList>();
    std::vector<ChannelNode*> dropped;
    if (old != nullptr) {
      next->subscribers.reserve(old->subscribers.size() + 1);
      next->stores.reserve(old->stores.size() + 1);
      for (const auto* nodes : {&old->subscribers, &old->stores}) {
        for (ChannelNode* n : *nodes) {
          // Acquire: pairs with remove()'s release, which may come from another thread still on
          // its way to this lock; what it did with the node before happens before its deletion.
          if (n->removed.load(std::memory_order_acquire)) {
            dropped.push_back(n);
          } else {
            (n->store ? next->stores : next->subscribers).push_back(n);
          }
        }
      }
    }
    if (added != nullptr) (added->store ? next->stores : next->subscribers).push_back(added);
    if (old != nullptr) retired_.reserve(retired_.size() + 1);
    // Nothing below throws.
    const bool empty = next->subscribers.empty() && next->stores.empty();
    list_.store(empty ? nullptr : next.release(), std::memory_order_seq_cst);
    if (old != nullptr) {
      old->dropped = std::move(dropped);
      retired_.push_back(old);
    }
  }

  /// Frees every retired list (and the nodes it dropped) once no publisher can read it.
  void reclaim() noexcept {
    std::vector<ChannelList*> lists;
    {
      const std::lock_guard lock(list_mutex_);
      lists.swap(retired_);
    }
    if (lists.empty()) return;
    synchronize();
    for (ChannelList* list : lists) free_list(list);
  }

  /// Waits until every publisher that started before this call has finished.
  ///
  // NOTE: a publisher that read an unpublished list incremented readers_[x] before that read,
  // and so before the unpublish and this call (seq_cst: one total order). Each phase flips the
  // epoch and waits for the counter of the epoch before the flip; the two phases wait for both
  // counters, each after the flip, so they see that increment whatever `x` is, and wait for its
  // decrement. New publishers count in the other counter, so each wait ends.
  void synchronize() noexcept {
    const std::lock_guard lock(sync_mutex_);
    for (int phase = 0; phase < 2; ++phase) {
      const std::uint32_t e = epoch_.load(std::memory_order_relaxed);
      epoch_.store(e ^ 1U, std::memory_order_seq_cst);
      for (unsigned spin = 0; readers_[e].load(std::memory_order_seq_cst) != 0; ++spin) {
        if (spin >= 64) std::this_thread::yield();
      }
    }
  }

  std::atomic<ChannelList*> list_{nullptr};
  mutable std::array<std::atomic<std::uint32_t>, 2> readers_{};
  std::atomic<std::uint32_t> epoch_{0};
  std::mutex list_mutex_;  // list_ changes and retired_
  std::mutex sync_mutex_;  // one grace period at a time
  std::vector<ChannelList*> retired_;
};

/// A subscriber receiving `Arg` (`const M&` or `M&`).
template <class Arg>
struct SubscriberNode : ChannelNode {
  virtual void call(Arg message) = 0;
};

template <class Arg, class F>
struct SubscriberOf final : SubscriberNode<Arg> {
  template <class G>
  explicit SubscriberOf(G&& f) : fn(std::forward<G>(f)) {}
  void call(Arg message) override { std::invoke(fn, message); }
  F fn;
};

template <class Arg>
struct StoreNode;

/// What a store's Binding constructs its value from: the store and the message.
template <class Arg>
struct StoreCall {
  StoreNode<Arg>* node;
  std::remove_reference_t<Arg>* message;
};

/// A bound store: a variable and the transform that makes its value from a message.
template <class Arg>
struct StoreNode : ChannelNode {
  StoreNode() noexcept { this->store = true; }
  /// A binding that constructs the value in the new frame by calling the transform there.
  virtual Binding binding(StoreCall<Arg>& call) noexcept = 0;
};

template <class Arg, class T, class F>
struct StoreOf final : StoreNode<Arg> {
  template <class G>
  StoreOf(VariableId variable, G&& f) : id(variable), transform(std::forward<G>(f)) {}

  Binding binding(StoreCall<Arg>& call) noexcept override {
    Binding b;
    b.id = id;
    b.kind = Binding::Kind::construct;
    b.size = sizeof(T);
    b.alignment = alignof(T);
    // The transform runs while the frame is built, constructing the value in place: no copy.
    b.construct = [](void* destination, void* source) {
      auto& c = *static_cast<StoreCall<Arg>*>(source);
      auto& self = static_cast<StoreOf&>(*c.node);
      ::new (destination) T(std::invoke(self.transform, static_cast<Arg>(*c.message)));
    };
    b.destroy = destroy_function<T>();
    b.source = &call;
    return b;
  }

  VariableId id;
  F transform;
};

/// How a channel keeps and calls a subscriber or transform `F`: a decayed copy, as an lvalue.
template <class F>
using stored_callable_t = std::add_lvalue_reference_t<std::decay_t<F>>;

/// A subscriber of a channel whose subscribers receive `Arg`.
template <class F, class Arg>
concept subscriber_for = std::invocable<stored_callable_t<F>, Arg>;

/// A transform making a `T` from a message received as `Arg`.
template <class F, class Arg, class T>
concept store_transform_for = std::invocable<stored_callable_t<F>, Arg> &&
    std::constructible_from<T, std::invoke_result_t<stored_callable_t<F>, Arg>>;

}  // namespace detail

/// What `subscribe` and `bind_store` return: the subscriber (or store) stays on the channel for
/// as long as this object lives. Move-only (it owns a registration, not a window: there is no
/// order to keep, so it may be stored in a vector or a member, or moved out of a function).
///
/// Destroying it (or `reset()`) removes the subscriber; it returns once no other thread is still
/// calling it (it waits for the publishes in flight, which never hold a lock), so whatever the
/// subscriber refers to may be destroyed right after. The exception: destroyed inside a publish
/// on this thread (a subscriber that unsubscribes), it does not wait, and a call already started
/// on another thread may still be running; no new call starts either way. A subscription may
/// outlive its channel (it then only frees its own memory).
class [[nodiscard]] Subscription {
 public:
  /// An empty subscription.
  Subscription() noexcept = default;
  Subscription(Subscription&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      node_ = std::exchange(other.node_, nullptr);
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { reset(); }

  /// Unsubscribes now (see the class comment); then this subscription is empty.
  void reset() noexcept {
    if (detail::ChannelNode* node = std::exchange(node_, nullptr)) {
      if (node->channel != nullptr) {
        node->channel->remove(node);
      } else {
        delete node;  // the channel is gone
      }
    }
  }

  /// Whether this holds a subscriber or a store.
  [[nodiscard]] explicit operator bool() const noexcept { return node_ != nullptr; }

 private:
  template <class M>
  friend class WindowChannel;
  explicit Subscription(detail::ChannelNode* node) noexcept : node_(node) {}

  detail::ChannelNode* node_ = nullptr;
};

/// A channel on which a library announces its windows (the RFC's Window Channel, Node's
/// `diagnostics_channel`): instrumentation subscribes to the messages, or binds context
/// variables to them, and the library depends on none of it.
///
/// `M` is the message type. Subscribers of `WindowChannel<M>` receive `const M&`; those of
/// `WindowChannel<M&>` (the events of a TracingChannel) receive `M&`, and may attach state to the
/// message. Define a channel once, beside the library's API (`inline` at namespace scope: the
/// constructor is constexpr, so it is usable during static initialisation), and share it by
/// reference. Neither copyable nor movable.
///
///     inline ucm::WindowChannel<CacheMiss> cache_miss;                    // the library
///     if (cache_miss.has_subscribers()) cache_miss.publish(CacheMiss{key});
///     auto sub = cache_miss.subscribe([](const CacheMiss& m) { ++misses; });   // instrumentation
///
/// Thread safety: every member may be called from any thread at any time; subscribers may be
/// called concurrently from several threads. A subscriber or transform that throws is a bug in
/// the instrumentation: the exception never reaches the publisher, it is reported to the misuse
/// handler (`ucm::set_misuse_handler`) and the other subscribers still run.
template <class M>
class WindowChannel {
  static_assert(std::is_object_v<std::remove_reference_t<M>> && !std::is_rvalue_reference_v<M> &&
                    !std::is_const_v<std::remove_reference_t<M>>,
                "WindowChannel<M> or WindowChannel<M&>, M a non-const object type");

 public:
  /// The message type.
  using message_type = std::remove_reference_t<M>;
  /// What subscribers and transforms receive: `const M&`, or `M&` for `WindowChannel<M&>`.
  using argument_type = std::conditional_t<std::is_lvalue_reference_v<M>, M, const M&>;

  /// A channel with no subscriber.
  constexpr WindowChannel() noexcept = default;
  WindowChannel(const WindowChannel&) = delete;
  WindowChannel& operator=(const WindowChannel&) = delete;

  /// Whether anybody subscribed or bound a store: one relaxed load, no write, so a publisher can
  /// skip building a message nobody reads.
  [[nodiscard]] bool has_subscribers() const noexcept { return core_.active(); }

  /// Calls `fn(message)` for every message published from now on, until the returned
  /// Subscription is destroyed. Allocates the subscriber and a copy of the subscriber list; may
  /// wait for publishes in flight to finish before freeing the old list.
  template <detail::subscriber_for<argument_type> F>
  Subscription subscribe(F&& fn) {
    auto node =
        std::make_unique<detail::SubscriberOf<argument_type, std::decay_t<F>>>(std::forward<F>(fn));
    core_.add(node.get());
    return Subscription(node.release());
  }

  /// Binds `variable` to this channel (Node's `bindStore`): in `run_stores(message, fn)`,
  /// `variable` holds `T(transform(message))` while `fn` runs. Until the returned Subscription is
  /// destroyed. The variable must outlive the binding, or at least every `run_stores` in it.
  template <class T, detail::store_transform_for<argument_type, T> F>
  Subscription bind_store(const ContextVariable<T>& variable, F&& transform) {
    auto node = std::make_unique<detail::StoreOf<argument_type, T, std::decay_t<F>>>(
        detail::VariableAccess::id(variable), std::forward<F>(transform));
    core_.add(node.get());
    return Subscription(node.release());
  }

  /// Calls every subscriber with `message`, in subscription order, on this thread. With no
  /// subscriber: one relaxed load and a branch, nothing else. Never throws.
  void publish(argument_type message) const noexcept {
    if (!core_.active()) [[likely]] {
      return;
    }
    publish_to_subscribers(message);
  }

  /// Runs `fn(args...)` in **one** call window in which every variable bound with `bind_store`
  /// holds its transform of `message` (one frame, however many stores), after publishing
  /// `message` to the subscribers inside that window; returns what `fn` returns (Node's
  /// `runStores`). The transforms run while that one frame is built, before the window opens,
  /// in no particular order, each in the caller's context (so `get_active()` there is the
  /// caller's value, and no transform sees another's store: unlike Node's nested windows); if
  /// one throws, it is reported to the misuse handler and no store is set. Cost: with no
  /// subscriber and no store, `fn(args...)` after one load and a branch; otherwise one frame
  /// (one block, however many stores). Publishers in flight never delay an unsubscribe for
  /// longer than the transforms and subscribers take: `fn` runs after the list is released.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  decltype(auto) run_stores(argument_type message, F&& fn, Args&&... args) const {
    if (!core_.active()) [[likely]] {
      return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    }
    return run_with_stores(message, std::forward<F>(fn), std::forward<Args>(args)...);
  }

 private:
  template <class>
  friend class TracingChannel;

  // NOTE: out of line, so that a publisher's inlined fast path stays a load, a branch and its call.
  template <class F, class... Args>
  [[gnu::noinline]] decltype(auto) run_with_stores(argument_type message, F&& fn,
                                                   Args&&... args) const {
    std::optional<detail::CallWindow> window;
    {
      const detail::ChannelCore::Read read(core_);
      if (detail::FrameData* frame = build_stores(read.list(), message)) {
        window.emplace(frame, true);
      }
      notify(read.list(), message);
    }
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  // NOTE: out of line, so that a publisher's inlined fast path stays one load and a branch.
  [[gnu::noinline]] void publish_to_subscribers(argument_type message) const noexcept {
    const detail::ChannelCore::Read read(core_);
    notify(read.list(), message);
  }

  static void notify(const detail::ChannelList* list, argument_type message) noexcept {
    if (list == nullptr) return;
    for (detail::ChannelNode* n : list->subscribers) {
      // Acquire: pairs with the release in remove(), for a subscriber removed by this thread
      // inside this publish (another thread's removal is covered by the grace period).
      if (n->removed.load(std::memory_order_acquire)) continue;
      try {
        static_cast<detail::SubscriberNode<argument_type>*>(n)->call(message);
      } catch (...) {
        detail::report_misuse(
            "a ucm channel subscriber threw: the exception was dropped (subscribers must not "
            "throw into the library that publishes)");
      }
    }
  }

  /// A new frame: `current` plus every store's value for `message`, or nullptr (no store, or a
  /// transform threw). One allocation, whatever the number of stores.
  static detail::FrameData* build_stores(const detail::ChannelList* list,
                                         argument_type message) noexcept {
    if (list == nullptr || list->stores.empty()) return nullptr;
    using Call = detail::StoreCall<argument_type>;
    auto* const msg = const_cast<std::remove_reference_t<argument_type>*>(std::addressof(message));
    constexpr std::size_t inline_stores = 4;
    std::array<Call, inline_stores> inline_calls;
    std::array<detail::Binding, inline_stores> inline_bindings;
    std::vector<Call> heap_calls;
    std::vector<detail::Binding> heap_bindings;
    try {
      Call* calls = inline_calls.data();
      detail::Binding* bindings = inline_bindings.data();
      const std::size_t n = list->stores.size();
      if (n > inline_stores) {
        heap_calls.resize(n);
        heap_bindings.resize(n);
        calls = heap_calls.data();
        bindings = heap_bindings.data();
      }
      std::size_t count = 0;
      for (detail::ChannelNode* node : list->stores) {
        if (node->removed.load(std::memory_order_acquire)) continue;
        auto* store = static_cast<detail::StoreNode<argument_type>*>(node);
        calls[count] = Call{store, msg};
        bindings[count] = store->binding(calls[count]);
        ++count;
      }
      if (count == 0) return nullptr;
      return detail::build_frame(detail::slots().current, bindings, count);
    } catch (...) {
      detail::report_misuse(
          "a ucm channel store transform threw: the exception was dropped and no store was set");
      return nullptr;
    }
  }

  /// For TracingChannel::trace_task: sets every store for the rest of the enclosing window
  /// (`enter` semantics) and publishes `message` there.
  void enter_stores(argument_type message) const noexcept {
    if (!core_.active()) return;
    const detail::ChannelCore::Read read(core_);
    if (detail::FrameData* frame = build_stores(read.list(), message)) {
      detail::enter_frame(frame);
    }
    notify(read.list(), message);
  }

  mutable detail::ChannelCore core_;
};

}  // namespace ucm

// TracingChannel, built on WindowChannel: users of this header have always had it.
#include "ucm/tracing_channel.hpp"  // IWYU pragma: export
