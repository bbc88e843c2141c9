// SPDX-License-Identifier: MIT
// ucm/manager.hpp: ContextManager<Payload>, many named contexts set at once at a request
// boundary, each built from the request payload.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ucm/detail/copy_on_write.hpp"
#include "ucm/detail/frame_build.hpp"
#include "ucm/detail/frame_lifetime.hpp"
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

}  // namespace detail

/// What a builder sees of the build in progress: the values made by the builders registered
/// before it. Passed as the optional second argument of a builder. Builders run in a call window
/// on the stores built before them, so `variable.get()` reads the same; the view is kept for
/// builders written for it.
class BuildView {
 public:
  /// The value `variable` gets in this build if its builder already ran (registered earlier);
  /// otherwise `variable.get()` in the context the build runs in. The same as `variable.get()`
  /// inside the builder.
  template <class T>
  [[nodiscard]] const T* get(const ContextVariable<T>& variable) const noexcept {
    return variable.get();
  }

 private:
  template <class Payload>
  friend class ContextManager;
  BuildView() noexcept = default;
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

  /// A new frame: `above` (one reference, kept by the caller) plus this context's value, which
  /// the builder makes in place in the new frame's block (one reference, returned).
  virtual FrameData* build(FrameData* above, const Payload& payload,
                           const BuildView& view) const = 0;

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

/// What builds a T from a payload: `builder(payload)`, or `builder(payload, view)` reading the
/// values built before it, whose result constructs a T.
template <class Builder, class T, class Payload>
concept value_builder =
    (std::invocable<const Builder&, const Payload&> &&
     std::constructible_from<T, std::invoke_result_t<const Builder&, const Payload&>>) ||
    (std::invocable<const Builder&, const Payload&, const BuildView&> &&
     std::constructible_from<
         T, std::invoke_result_t<const Builder&, const Payload&, const BuildView&>>);

template <class Payload, class T, class Builder>
class TypedRegistration final : public Registration<Payload> {
 public:
  TypedRegistration(std::string name, const ContextVariable<T>& variable, Builder builder)
      : Registration<Payload>(std::move(name), VariableAccess::id(variable), &variable, typeid(T),
                              sizeof(T), alignof(T)),
        builder_(std::move(builder)) {}

  FrameData* build(FrameData* above, const Payload& payload, const BuildView& view) const override {
    struct Source {
      const TypedRegistration* self;
      const Payload* payload;
      const BuildView* view;
    } source{this, &payload, &view};
    Binding b;
    b.id = this->id();
    b.kind = Binding::Kind::construct;
    b.size = sizeof(T);
    b.alignment = alignof(T);
    // The builder's result initialises the value in the frame's block: no staging, no move.
    b.construct = [](void* destination, void* from) {
      const Source& s = *static_cast<const Source*>(from);
      if constexpr (std::invocable<const Builder&, const Payload&, const BuildView&>) {
        ::new (destination) T(std::invoke(s.self->builder_, *s.payload, *s.view));
      } else {
        ::new (destination) T(std::invoke(s.self->builder_, *s.payload));
      }
    };
    b.destroy = destroy_function<T>();
    b.source = &source;
    return build_frame(above, &b, 1);
  }

 private:
  Builder builder_;
};

}  // namespace detail

/// Many named contexts set together at a request boundary (seed 003's context manager).
///
/// Register each context once, at start-up, with a builder that makes its value from the request
/// payload (an HTTP request, a message: whatever the boundary has). At each request, `run_all`
/// builds every value, in registration order, into **one** frame and runs the handler in one
/// call window:
///
///     ucm::ContextManager<HttpRequest> contexts;
///     contexts.register_context("trace", trace, [](const HttpRequest& r) { return Trace::from(r);
///     })
///             .register_context("user", user, [](const HttpRequest& r) { return r.header("user");
///             });
///     contexts.run_all(request, handle, request);
///
/// Builders run in registration order, each in a call window holding the values built before
/// it: a builder, and any code it calls, reads them through their variables' `get()` (register
/// dependencies first). A builder may also take `(const Payload&, const BuildView&)` and read
/// them through the view. Cost: one frame block per context, from this thread's block cache
/// (no allocation in the steady state), and one call window per builder.
/// Registration is safe while other threads build: the registry is copied on write and readers
/// take no lock. Registered variables must outlive their registration. Several independent
/// managers may coexist, but a variable belongs to at most one name per manager.
template <class Payload>
class ContextManager {
  using Registration = detail::Registration<Payload>;
  using Registry = std::vector<std::shared_ptr<const Registration>>;

 public:
  ContextManager() = default;
  ContextManager(const ContextManager&) = delete;
  ContextManager& operator=(const ContextManager&) = delete;

  /// Registers `variable` under `name`, with `builder(payload)` or `builder(payload, view)`
  /// making its value. Returns `*this` for chaining. Throws `context_error` if the name or the
  /// variable is already registered here.
  template <std::move_constructible T, detail::value_builder<T, Payload> Builder>
  ContextManager& register_context(std::string name, const ContextVariable<T>& variable,
                                   Builder builder) {
    auto registration = std::make_shared<detail::TypedRegistration<Payload, T, Builder>>(
        std::move(name), variable, std::move(builder));
    registry_.update([&](Registry& registry) {
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
    registry_.update([&](Registry& registry) {
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
    const auto reader = registry_.read();
    return find(*reader, name) != nullptr;
  }

  /// The variable registered under `name`. Throws `context_error` if there is none or if it is
  /// not a `ContextVariable<T>`.
  template <class T>
  [[nodiscard]] const ContextVariable<T>& get_context(std::string_view name) const {
    const auto reader = registry_.read();
    const Registration* r = find(*reader, name);
    if (r == nullptr) throw context_error("ucm: no context named '" + std::string(name) + "'");
    if (r->type() != typeid(T)) {
      throw context_error("ucm: context '" + std::string(name) + "' holds " + r->type().name() +
                          ", not " + typeid(T).name());
    }
    return *static_cast<const ContextVariable<T>*>(r->variable());
  }

  /// The registered names, in registration order.
  [[nodiscard]] std::vector<std::string> names() const {
    const auto reader = registry_.read();
    std::vector<std::string> out;
    for (const auto& r : *reader) out.push_back(r->name());
    return out;
  }

  /// One frame: the current frame plus every registered context's value built from `payload`,
  /// builders run in registration order, each seeing the values built before it through
  /// `get()`. Each value is made in place in its frame block (no copy, no move). If a builder
  /// throws, nothing is applied: the slots are as they were and the values built are destroyed.
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
    const auto reader = registry_.read();
    const Registry& registry = *reader;
    std::vector<detail::Binding> unbind(registry.size());
    for (std::size_t i = 0; i < registry.size(); ++i) unbind[i].id = registry[i]->id();
    detail::enter_frame(detail::build_frame(detail::slots().current, unbind.data(), unbind.size()));
  }

 private:
  static const Registration* find(const Registry& registry, std::string_view name) noexcept {
    for (const auto& r : registry) {
      if (r->name() == name) return r.get();
    }
    return nullptr;
  }

  // NOTE: each store is built into a frame of its own over the stores built before it, and each
  // builder runs in a call window on the frame below its own: it, and anything it calls, reads
  // the earlier stores through get(), and whatever it captures keeps them alive (they live in
  // counted frames, never in a buffer of this function). The result is the last of these frames:
  // one frame, one call window, one block per store (from this thread's block cache, so no
  // allocation in the steady state; a handful of stores is a chain of deltas, longer ones are
  // flattened every max_delta_depth levels, as with nested windows). A builder that throws
  // leaves the slots as they were: its window restores them and the frames built so far are
  // released. A builder's `enter` ends with its window.
  detail::FrameData* build_frame(const Payload& payload) const {
    const auto reader = registry_.read();
    const Registry& registry = *reader;
    detail::FrameData* const base = detail::slots().current;
    if (registry.empty()) return detail::build_frame(base, nullptr, 0);
    const BuildView view;
    detail::FrameData* built = nullptr;  // one reference once a store is built
    try {
      for (const auto& r : registry) {
        detail::FrameData* const above = built != nullptr ? built : base;
        detail::FrameData* next = nullptr;
        {
          const detail::CallWindow window(above, false);
          next = r->build(above, payload, view);
        }
        detail::release(built);
        built = next;
      }
    } catch (...) {
      detail::release(built);
      throw;
    }
    return built;
  }

  // Copied on write: builds read it without a lock (detail/copy_on_write.hpp).
  detail::CopyOnWrite<Registry> registry_;
};

}  // namespace ucm
