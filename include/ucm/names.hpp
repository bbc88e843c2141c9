// SPDX-License-Identifier: MIT
// ucm/names.hpp: names of context variables for diagnostics (`ucm::named`, like Python's
// `ContextVar("request_id")`), and `ucm::describe`, the debugging aid that lists what a frame
// holds by name and prints only the values their owners exposed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/detail/frame_layout.hpp"
#include "ucm/detail/name_registry.hpp"
#include "ucm/frame.hpp"

namespace ucm {

/// A name for a context variable, for diagnostics (like Python's `ContextVar("request_id")`);
/// made by `ucm::named` and passed to the variable's constructor. It may carry a default value
/// and a formatter. A name is not an identity: two variables may share one, and a variable is
/// still found only through itself.
///
///     inline ucm::ContextVariable<std::string> request_id{ucm::named("request_id").expose()};
///     inline ucm::ContextVariable<int> retries{ucm::named("retries", 3)};     // with a default
///     inline ucm::ContextVariable<User> user{ucm::named("user")};             // value hidden
///
/// `ucm::describe` lists what a frame holds by name; it prints a value only where the owner
/// exposed it (`expose()`), so the RFC's "readable only through its variable" still holds for
/// every other variable.
template <class D = detail::NoDefault, class F = detail::Hidden>
class VariableName {
 public:
  constexpr VariableName(std::string_view name, D default_value, F format)
      : name_(name), default_(std::move(default_value)), format_(std::move(format)) {}

  /// Lets `describe` print the value as is: for types convertible to `std::string_view` and
  /// arithmetic types.
  [[nodiscard]] constexpr VariableName<D, detail::ShowAsIs> expose() && {
    return {name_, std::move(default_), {}};
  }
  /// Lets `describe` print the value as `format(value)` (anything convertible to `std::string`).
  /// The formatter may be called from any thread.
  template <class G>
  [[nodiscard]] VariableName<D, std::decay_t<G>> expose(G&& format) && {
    return {name_, std::move(default_), std::forward<G>(format)};
  }

 private:
  template <class T>
  friend class ContextVariable;

  std::string_view name_;
  [[no_unique_address]] D default_;
  [[no_unique_address]] F format_;
};

/// A name for a variable with no default: `ContextVariable<T> v{ucm::named("request_id")}`.
/// A tag rather than a string, so that `ContextVariable<std::string> v{"text"}` keeps meaning a
/// default value.
[[nodiscard]] constexpr VariableName<> named(std::string_view name) noexcept {
  return {name, {}, {}};
}

/// A name and a default value: `ContextVariable<int> v{ucm::named("retries", 3)}`.
template <class V>
[[nodiscard]] constexpr VariableName<std::decay_t<V>> named(std::string_view name,
                                                            V&& default_value) {
  return {name, std::forward<V>(default_value), {}};
}

/// One variable bound in a frame, as `describe` shows it.
struct BindingDescription {
  /// The variable's identity (unique in the process; not stable across runs).
  std::uint64_t id = 0;
  /// Its name (`ucm::named`), or empty.
  std::string name;
  /// Its value as text, only if the variable's owner exposed it (`named(...).expose()`).
  std::optional<std::string> value;

  /// `name=value`, `name=<hidden>`, or `<unnamed #id>=<hidden>` (id in hex).
  [[nodiscard]] std::string to_string() const {
    std::string text;
    if (name.empty()) {
      char buffer[2 + 2 * sizeof(std::uint64_t) + 1];
      std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(id));
      text += "<unnamed #";
      text += buffer;
      text += '>';
    } else {
      text += name;
    }
    text += '=';
    text += value ? *value : std::string("<hidden>");
    return text;
  }
};

/// Lists the variables bound in `frame`: by name, with the value only of those whose owner
/// exposed it; hidden otherwise, and `<unnamed #id>` for a variable without a name. Defaults are
/// not listed (they are not in frames), nor unbound variables. Sorted by name (unnamed last),
/// then by id. A debugging aid: it allocates, and takes the name registry's lock briefly.
///
///     std::puts(ucm::debug_string().c_str());  // {request_id=r-42, user=<hidden>}
[[nodiscard]] inline std::vector<BindingDescription> describe(const ContextFrame& frame) {
  // Every entry seen through the frame, the nearest first: a delta's own entries shadow its
  // parent's, and an unbinding (a null value) hides the variable.
  struct Seen {
    detail::VariableId id;
    const void* value;
  };
  std::vector<Seen> seen;
  for (const detail::FrameData* f = detail::FrameAccess::data(frame); f != nullptr;
       f = f->parent()) {
    // The last first: a frame with no index may repeat a variable, its last entry counting.
    const detail::FrameEntry* entries = f->entries();
    for (std::uint32_t i = f->size; i-- > 0;) seen.push_back(Seen{entries[i].id, entries[i].value});
  }
  std::stable_sort(seen.begin(), seen.end(),
                   [](const Seen& a, const Seen& b) { return a.id < b.id; });
  std::vector<detail::VariableId> ids;
  std::vector<const void*> values;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (i > 0 && seen[i].id == seen[i - 1].id) continue;  // shadowed by a nearer entry
    if (seen[i].value == nullptr) continue;               // unbound here
    ids.push_back(seen[i].id);
    values.push_back(seen[i].value);
  }
  // Formatted outside the registry's lock; `frame` keeps the values alive meanwhile.
  const std::vector<std::shared_ptr<const detail::VariableInfo>> names = detail::find_names(ids);
  std::vector<BindingDescription> result;
  result.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    BindingDescription d;
    d.id = ids[i];
    if (names[i] != nullptr) {
      d.name = names[i]->name();
      d.value = names[i]->show(values[i]);
    }
    result.push_back(std::move(d));
  }
  std::stable_sort(result.begin(), result.end(),
                   [](const BindingDescription& a, const BindingDescription& b) {
                     if (a.name.empty() != b.name.empty()) return b.name.empty();
                     return a.name < b.name;
                   });
  return result;
}

/// `describe(ContextFrame::current())`.
[[nodiscard]] inline std::vector<BindingDescription> describe() {
  return describe(ContextFrame::current());
}

/// `describe(frame)` on one line: `{request_id=r-42, user=<hidden>}`.
[[nodiscard]] inline std::string debug_string(const ContextFrame& frame = ContextFrame::current()) {
  std::string text = "{";
  bool first = true;
  for (const BindingDescription& d : describe(frame)) {
    if (!first) text += ", ";
    first = false;
    text += d.to_string();
  }
  text += '}';
  return text;
}

}  // namespace ucm
