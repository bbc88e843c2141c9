// SPDX-License-Identifier: MIT
// ucm/detail/name_registry.hpp: the process-wide registry of variable names (ucm::named) that
// `ucm::describe` reads. It holds names and the formatters that a variable's owner chose to
// expose, never values. Nothing here is public API.
#pragma once

#include <algorithm>
#include <concepts>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/detail/config.hpp"
#include "ucm/detail/frame_layout.hpp"

namespace ucm {

namespace detail {
/// VariableName without a default value.
struct NoDefault {};
/// VariableName whose value `describe` does not print.
struct Hidden {};
/// VariableName whose value `describe` prints as is (strings, arithmetic types).
struct ShowAsIs {};

/// Whether `expose()` without a formatter can print a `T`.
template <class T>
concept shown_as_is = std::convertible_to<const T&, std::string_view> || std::is_arithmetic_v<T>;

/// Whether `F` makes text of a `T` for `describe`.
template <class F, class T>
concept formats = std::same_as<F, Hidden> ||(std::same_as<F, ShowAsIs>&& shown_as_is<T>) ||
                  (std::invocable<const F&, const T&> &&
                   std::convertible_to<std::invoke_result_t<const F&, const T&>, std::string>);

/// A registered name: what `describe` knows of a variable. Never a value.
class VariableInfo {
 public:
  VariableInfo(VariableId id, std::string_view name) : id_(id), name_(name) {}
  VariableInfo(const VariableInfo&) = delete;
  VariableInfo& operator=(const VariableInfo&) = delete;
  virtual ~VariableInfo() = default;

  [[nodiscard]] VariableId id() const noexcept { return id_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The text of `value` (a `const T*` of the variable's type) if the owner exposed it.
  [[nodiscard]] virtual std::optional<std::string> show(const void* value) const {
    (void)value;
    return std::nullopt;
  }

 private:
  VariableId id_;
  std::string name_;
};

template <class T, class F>
class ExposedInfo final : public VariableInfo {
 public:
  ExposedInfo(VariableId id, std::string_view name, F format)
      : VariableInfo(id, name), format_(std::move(format)) {}

  [[nodiscard]] std::optional<std::string> show(const void* value) const override {
    const T& v = *static_cast<const T*>(value);
    if constexpr (std::same_as<F, ShowAsIs>) {
      if constexpr (std::convertible_to<const T&, std::string_view>) {
        return std::string(std::string_view(v));
      } else if constexpr (std::same_as<T, bool>) {
        return std::string(v ? "true" : "false");
      } else {
        return std::to_string(v);
      }
    } else {
      return std::string(std::invoke(format_, v));
    }
  }

 private:
  [[no_unique_address]] F format_;
};

/// Every named variable alive in this copy of ucm, sorted by id. One per program (see
/// UCM_SHARED_STATE); never destroyed, so variables destroyed during static destruction can still
/// unregister.
struct NameRegistry {
  std::mutex mutex;
  std::vector<std::shared_ptr<const VariableInfo>> infos;
};

UCM_SHARED_STATE inline NameRegistry& name_registry() {
  static NameRegistry* const instance = new NameRegistry;
  return *instance;
}

/// Registers a name; returns the registered info (owned by the registry until unregister_name).
template <class T, class F>
const VariableInfo* register_name(VariableId id, std::string_view name, F format) {
  std::shared_ptr<const VariableInfo> info;
  if constexpr (std::same_as<F, Hidden>) {
    info = std::make_shared<const VariableInfo>(id, name);
  } else {
    info = std::make_shared<const ExposedInfo<T, F>>(id, name, std::move(format));
  }
  NameRegistry& r = name_registry();
  const std::lock_guard lock(r.mutex);
  const auto at = std::lower_bound(
      r.infos.begin(), r.infos.end(), id,
      [](const std::shared_ptr<const VariableInfo>& i, VariableId key) { return i->id() < key; });
  r.infos.insert(at, info);
  return info.get();
}

/// Removes a variable's name (its destructor). Formatting already under way keeps its copy.
inline void unregister_name(VariableId id) noexcept {
  NameRegistry& r = name_registry();
  std::shared_ptr<const VariableInfo> removed;  // released after the lock
  const std::lock_guard lock(r.mutex);
  const auto at = std::lower_bound(
      r.infos.begin(), r.infos.end(), id,
      [](const std::shared_ptr<const VariableInfo>& i, VariableId key) { return i->id() < key; });
  if (at != r.infos.end() && (*at)->id() == id) {
    removed = std::move(*at);
    r.infos.erase(at);
  }
}

/// The registered names of `ids` (sorted ascending), nullptr where a variable has none.
inline std::vector<std::shared_ptr<const VariableInfo>> find_names(
    const std::vector<VariableId>& ids) {
  std::vector<std::shared_ptr<const VariableInfo>> found(ids.size());
  NameRegistry& r = name_registry();
  const std::lock_guard lock(r.mutex);
  auto from = r.infos.begin();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    from = std::lower_bound(from, r.infos.end(), ids[i],
                            [](const std::shared_ptr<const VariableInfo>& info, VariableId key) {
                              return info->id() < key;
                            });
    if (from != r.infos.end() && (*from)->id() == ids[i]) found[i] = *from;
  }
  return found;
}

}  // namespace detail

}  // namespace ucm
