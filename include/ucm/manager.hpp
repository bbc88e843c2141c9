// SPDX-License-Identifier: MIT
// ucm/manager.hpp: ContextManager<Payload>, many named contexts set at once at a request
// boundary, each built from the request payload.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ucm/detail/frame_data.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"
#include "ucm/variable.hpp"

namespace ucm {

/// Thrown by ContextManager for registration mistakes (a name or variable registered twice) and
/// for lookups of an unknown name or with the wrong type.
class context_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class Payload>
class ContextManager;

namespace detail {

/// One registered context, type-erased. Immutable once made; shared by registry snapshots.
template <class Payload>
class Registration;

/// Staging for the values of one build: a small buffer on the stack, one heap block beyond it
/// or for values aligned beyond `std::max_align_t`. Offsets into it are aligned for each value,
/// so its start is aligned for the most aligned one.
class Staging {
 public:
  Staging(std::size_t bytes, std::size_t alignment) : alignment_(alignment) {
    if (bytes > inline_.size() || alignment > alignof(std::max_align_t)) {
      heap_ = ::operator new (bytes, std::align_val_t{alignment});
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging() {
    if (heap_ != nullptr) ::operator delete (heap_, std::align_val_t{alignment_});
  }
  std::byte* data() noexcept {
    return heap_ != nullptr ? static_cast<std::byte*>(heap_) : inline_.data();
  }

 private:
  alignas(std::max_align_t) std::array<std::byte, 512> inline_;
  std::size_t alignment_;
  void* heap_ = nullptr;
};

}  // namespace detail

/// What a builder sees of the build in progress: the values made by the builders registered
/// before it. Passed as the optional second argument of a builder.
class BuildView {
 public:
  /// The value `variable` gets in this build if its builder already ran (registered earlier);
  /// otherwise `variable.get()` in the context the build runs in.
  template <class T>
  [[nodiscard]] const T* get(const ContextVariable<T>& variable) const noexcept {
    const detail::VariableId id = detail::VariableAccess::id(variable);
    for (std::size_t i = 0; i < built_; ++i) {
      if (ids_[i] == id) return static_cast<const T*>(values_[i]);
    }
    return variable.get();
  }

 private:
  template <class Payload>
  friend class ContextManager;
  BuildView(const detail::VariableId* ids, void* const* values) noexcept
      : ids_(ids), values_(values) {}
  const detail::VariableId* ids_;
  void* const* values_;
  std::size_t built_ = 0;
};

namespace detail {

template <class Payload>
class Registration {
 public:
  Registration(std::string name, VariableId id, const void* variable, const std::type_info& type,
               std::size_t size, std::size_t alignment)
      : name_(std::move(name)),
        id_(id),
        variable_(variable),
        type_(&type),
        size_(size),
        alignment_(alignment) {}
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  virtual ~Registration() = default;

  /// Runs the builder and constructs its value at `destination`.
  virtual void build_into(void* destination, const Payload& payload,
                          const BuildView& view) const = 0;
  /// A binding that moves the staged value at `staged` into a frame.
  virtual Binding binding(void* staged) const noexcept = 0;
  virtual void destroy(void* staged) const noexcept = 0;

  const std::string& name() const noexcept { return name_; }
  VariableId id() const noexcept { return id_; }
  const void* variable() const noexcept { return variable_; }
  const std::type_info& type() const noexcept { return *type_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t alignment() const noexcept { return alignment_; }

 private:
  std::string name_;
  VariableId id_;
  const void* variable_;
  const std::type_info* type_;
  std::size_t size_;
  std::size_t alignment_;
};

template <class Payload, class T, class Builder>
class TypedRegistration final : public Registration<Payload> {
 public:
  TypedRegistration(std::string name, const ContextVariable<T>& variable, Builder builder)
      : Registration<Payload>(std::move(name), VariableAccess::id(variable), &variable, typeid(T),
                              sizeof(T), alignof(T)),
        builder_(std::move(builder)) {}

  void build_into(void* destination, const Payload& payload, const BuildView& view) const override {
    if constexpr (std::invocable<const Builder&, const Payload&, const BuildView&>) {
      ::new (destination) T(std::invoke(builder_, payload, view));
    } else {
      ::new (destination) T(std::invoke(builder_, payload));
    }
  }
  Binding binding(void* staged) const noexcept override {
    return move_binding<T>(this->id(), *static_cast<T*>(staged));
  }
  void destroy(void* staged) const noexcept override { static_cast<T*>(staged)->~T(); }

 private:
  Builder builder_;
};

}  // namespace detail

/// Many named contexts set together at a request boundary (seed 003's context manager).
///
/// Register each context once, at start-up, with a builder that makes its value from the request
/// payload (an HTTP request, a message: whatever the boundary has). At each request, `run_all`
/// builds every value, in registration order, into **one** frame (one allocation however many
/// contexts) and runs the handler in one call window:
///
///     ucm::ContextManager<HttpRequest> contexts;
///     contexts.register_context("trace", trace, [](const HttpRequest& r) { return Trace::from(r);
///     })
///             .register_context("user", user, [](const HttpRequest& r) { return r.header("user");
///             });
///     contexts.run_all(request, handle, request);
///
/// Builders run in registration order; a builder may take `(const Payload&, const BuildView&)`
/// and read, through the view, the values built before it (register dependencies first).
/// Registration is safe while other threads build: the registry is copied on write and readers
/// take no lock. Registered variables must outlive their registration. Several independent
/// managers may coexist, but a variable belongs to at most one name per manager.
template <class Payload>
class ContextManager {
  using Registration = detail::Registration<Payload>;
  using Registry = std::vector<std::shared_ptr<const Registration>>;

 public:
  ContextManager() : registry_(new Registry()) {}
  ContextManager(const ContextManager&) = delete;
  ContextManager& operator=(const ContextManager&) = delete;
  ~ContextManager() {
    delete registry_.load(std::memory_order_relaxed);
    for (const Registry* r : retired_) delete r;
  }

  /// Registers `variable` under `name`, with `builder(payload)` or `builder(payload, view)`
  /// making its value. Returns `*this` for chaining. Throws `context_error` if the name or the
  /// variable is already registered here.
  template <class T, class Builder>
  requires std::move_constructible<T> &&
      ((std::invocable<const Builder&, const Payload&> &&
        std::constructible_from<T, std::invoke_result_t<const Builder&, const Payload&>>) ||
       (std::invocable<const Builder&, const Payload&, const BuildView&> &&
        std::constructible_from<
            T, std::invoke_result_t<const Builder&, const Payload&, const BuildView&>>))
          ContextManager& register_context(std::string name, const ContextVariable<T>& variable,
                                           Builder builder) {
    auto registration = std::make_shared<detail::TypedRegistration<Payload, T, Builder>>(
        std::move(name), variable, std::move(builder));
    update([&](Registry& registry) {
      for (const auto& r : registry) {
        if (r->name() == registration->name()) {
          throw context_error("ucm: a context named '" + r->name() + "' is already registered");
        }
        if (r->id() == registration->id()) {
          throw context_error("ucm: this variable is already registered as '" + r->name() +
                              "'; cannot register it again as '" + registration->name() + "'");
        }
      }
      registry.push_back(std::move(registration));
    });
    return *this;
  }

  /// Removes the context named `name`. Returns whether there was one.
  bool unregister(std::string_view name) {
    bool removed = false;
    update([&](Registry& registry) {
      const auto it = std::find_if(registry.begin(), registry.end(),
                                   [&](const auto& r) { return r->name() == name; });
      if (it != registry.end()) {
        registry.erase(it);
        removed = true;
      }
    });
    return removed;
  }

  /// Whether a context named `name` is registered.
  [[nodiscard]] bool has_context(std::string_view name) const {
    const Reader reader(*this);
    return find(reader.registry(), name) != nullptr;
  }

  /// The variable registered under `name`. Throws `context_error` if there is none or if it is
  /// not a `ContextVariable<T>`.
  template <class T>
  [[nodiscard]] const ContextVariable<T>& get_context(std::string_view name) const {
    const Reader reader(*this);
    const Registration* r = find(reader.registry(), name);
    if (r == nullptr) throw context_error("ucm: no context named '" + std::string(name) + "'");
    if (r->type() != typeid(T)) {
      throw context_error("ucm: context '" + std::string(name) + "' holds " + r->type().name() +
                          ", not " + typeid(T).name());
    }
    return *static_cast<const ContextVariable<T>*>(r->variable());
  }

  /// The registered names, in registration order.
  [[nodiscard]] std::vector<std::string> names() const {
    const Reader reader(*this);
    std::vector<std::string> out;
    for (const auto& r : reader.registry()) out.push_back(r->name());
    return out;
  }

  /// One frame: the current frame plus every registered context's value built from `payload`,
  /// builders run in registration order. One frame allocation however many contexts (values are
  /// staged on the stack, then moved in). If a builder throws, nothing is applied.
  [[nodiscard]] ContextFrame build(const Payload& payload) const {
    return detail::FrameAccess::adopt(build_frame(payload));
  }

  /// Runs `fn(args...)` in one call window holding every context built from `payload`.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  decltype(auto) run_all(const Payload& payload, F&& fn, Args&&... args) const {
    detail::CallWindow window(build_frame(payload), true);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Sets every context built from `payload` for the rest of the enclosing window (`enter`
  /// semantics), for frameworks that give no callback to wrap.
  void enter_all(const Payload& payload) const { detail::enter_frame(build_frame(payload)); }

  /// Unbinds every registered variable for the rest of the enclosing window (they read their
  /// defaults, or nullptr, also where an inherited frame has them); other variables keep their
  /// values.
  void clear_all() const {
    const Reader reader(*this);
    const Registry& registry = reader.registry();
    std::vector<detail::Binding> unbind(registry.size());
    for (std::size_t i = 0; i < registry.size(); ++i) unbind[i].id = registry[i]->id();
    detail::enter_frame(detail::build_frame(detail::slots().current, unbind.data(), unbind.size()));
  }

 private:
  // Readers take no lock: they announce themselves in `readers_`, then load the registry. A
  // writer publishes a new registry and frees retired ones only when it sees no reader after
  // publishing (seq_cst on both sides: a reader that arrives later loads the new registry).
  class Reader {
   public:
    explicit Reader(const ContextManager& manager) noexcept : manager_(manager) {
      manager_.readers_.fetch_add(1, std::memory_order_seq_cst);
      registry_ = manager_.registry_.load(std::memory_order_seq_cst);
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() { manager_.readers_.fetch_sub(1, std::memory_order_release); }
    const Registry& registry() const noexcept { return *registry_; }

   private:
    const ContextManager& manager_;
    const Registry* registry_;
  };

  template <class Change>
  void update(Change&& change) {
    std::lock_guard lock(write_mutex_);
    const Registry* old = registry_.load(std::memory_order_relaxed);
    auto next = std::make_unique<Registry>(*old);
    change(*next);
    retired_.reserve(retired_.size() + 1);
    registry_.store(next.release(), std::memory_order_seq_cst);
    retired_.push_back(old);
    if (readers_.load(std::memory_order_seq_cst) == 0) {
      for (const Registry* r : retired_) delete r;
      retired_.clear();
    }
  }

  static const Registration* find(const Registry& registry, std::string_view name) noexcept {
    for (const auto& r : registry) {
      if (r->name() == name) return r.get();
    }
    return nullptr;
  }

  detail::FrameData* build_frame(const Payload& payload) const {
    const Reader reader(*this);
    const Registry& registry = reader.registry();
    const std::size_t n = registry.size();

    std::size_t bytes = 0;
    std::size_t alignment = alignof(std::max_align_t);
    for (const auto& r : registry) {
      bytes = detail::align_up(bytes, r->alignment()) + r->size();
      alignment = std::max(alignment, r->alignment());
    }
    detail::Staging staging(std::max<std::size_t>(bytes, 1), alignment);

    // Small per-build arrays on the stack for the usual handful of contexts.
    constexpr std::size_t inline_count = 16;
    std::array<detail::VariableId, inline_count> ids_inline;
    std::array<void*, inline_count> values_inline;
    std::array<detail::Binding, inline_count> bindings_inline;
    std::vector<detail::VariableId> ids_heap;
    std::vector<void*> values_heap;
    std::vector<detail::Binding> bindings_heap;
    detail::VariableId* ids = ids_inline.data();
    void** values = values_inline.data();
    detail::Binding* bindings = bindings_inline.data();
    if (n > inline_count) {
      ids_heap.resize(n);
      values_heap.resize(n);
      bindings_heap.resize(n);
      ids = ids_heap.data();
      values = values_heap.data();
      bindings = bindings_heap.data();
    }

    BuildView view(ids, values);
    std::size_t offset = 0;
    try {
      for (; view.built_ < n; ++view.built_) {
        const Registration& r = *registry[view.built_];
        offset = detail::align_up(offset, r.alignment());
        void* destination = staging.data() + offset;
        offset += r.size();
        r.build_into(destination, payload, view);
        ids[view.built_] = r.id();
        values[view.built_] = destination;
        bindings[view.built_] = r.binding(destination);
      }
      detail::FrameData* frame = detail::build_frame(detail::slots().current, bindings, n);
      destroy_staged(registry, values, n);
      return frame;
    } catch (...) {
      destroy_staged(registry, values, view.built_);
      throw;
    }
  }

  static void destroy_staged(const Registry& registry, void* const* values,
                             std::size_t built) noexcept {
    for (std::size_t i = built; i-- > 0;) registry[i]->destroy(values[i]);
  }

  std::atomic<const Registry*> registry_;
  mutable std::atomic<std::size_t> readers_{0};
  std::mutex write_mutex_;
  std::vector<const Registry*> retired_;
};

}  // namespace ucm
