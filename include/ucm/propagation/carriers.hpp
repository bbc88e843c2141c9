// SPDX-License-Identifier: MIT
// ucm/propagation/carriers.hpp: where `inject` writes and `extract` reads the W3C headers: the
// header names, the ReadableCarrier and WritableCarrier concepts (header maps, types with
// `get`/`set`, CarrierTraits specialisations) and EnvironmentCarrier (the environment of a child
// process). Part of ucm/propagation/w3c.hpp, which includes it.
#pragma once

#include <array>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/propagation/detail/w3c_text.hpp"

namespace ucm::w3c {

// =============================================================================================
// Carriers
// =============================================================================================

/// Header names, lower case as the specs recommend sending them.
inline constexpr std::string_view traceparent_header = "traceparent";
inline constexpr std::string_view tracestate_header = "tracestate";
inline constexpr std::string_view baggage_header = "baggage";

/// Makes a header container a carrier as it is, where it is neither a map nor a type with
/// `get`/`set` (ucm/propagation/beast.hpp does this for Beast's fields, requests and responses).
/// Specialise it with:
///
///     template <class F>
///     static void for_each(const C& carrier, std::string_view name, F&& visit);
///         // calls visit(std::string_view) with each value of header `name` (any case), in order
///     static void set(C& carrier, std::string_view name, std::string value);
///         // replaces every header `name` (any case) with one
///     static void erase(C& carrier, std::string_view name);
///         // removes every header `name` (any case)
///
/// `for_each` alone makes a ReadableCarrier, `set` and `erase` a WritableCarrier. The values
/// `visit` sees are read where the carrier keeps them, never copied, and repeated headers are
/// read as one list joined by `,`, as for maps.
template <class C>
struct CarrierTraits {};

namespace detail {

/// A header's values as `CarrierTraits::for_each` hands them out.
using HeaderVisitor = void (*)(std::string_view);

/// A carrier made one by a CarrierTraits specialisation, for reading.
template <class C>
concept adapted_reader = requires(const C& carrier, std::string_view name, HeaderVisitor visit) {
  CarrierTraits<C>::for_each(carrier, name, visit);
};

/// A carrier made one by a CarrierTraits specialisation, for writing (not through a const).
template <class C>
concept adapted_writer =
    !std::is_const_v<C> && requires(C & carrier, std::string_view name, std::string value) {
  CarrierTraits<C>::set(carrier, name, std::move(value));
  CarrierTraits<C>::erase(carrier, name);
};

template <class R>
concept optional_text = requires(const R& r) {
  { r.has_value() } -> std::convertible_to<bool>;
  { *r } -> std::convertible_to<std::string_view>;
};

/// What a carrier's `get` may return: an optional string (nullopt is absent), a pointer to a
/// string or `const char*` (nullptr is absent), or a string (empty is absent, OpenTelemetry's
/// convention).
template <class R>
concept header_value = optional_text<std::remove_cvref_t<R>> ||
    std::is_pointer_v<std::remove_cvref_t<R>> || std::convertible_to<R, std::string_view>;

/// A view of what a carrier's `get` returned (valid while the result lives), or nullopt when
/// the header is absent.
template <class R>
std::optional<std::string_view> header_view(const R& result) {
  if constexpr (optional_text<R>) {
    if (!result.has_value()) return std::nullopt;
    return std::string_view(*result);
  } else if constexpr (std::is_pointer_v<R>) {
    if (result == nullptr) return std::nullopt;
    if constexpr (std::convertible_to<R, const char*>) {
      return std::string_view(result);
    } else {
      return std::string_view(*result);
    }
  } else {
    const std::string_view text(result);
    if (text.empty()) return std::nullopt;
    return text;
  }
}

/// A carrier with its own `get(name)`.
template <class C>
concept custom_reader = requires(const C& carrier, const std::string& name) {
  { carrier.get(name) } -> header_value;
};

/// A carrier with its own `set(name, value)`.
template <class C>
concept custom_writer = requires(C& carrier, std::string name, std::string value) {
  carrier.set(std::move(name), std::move(value));
};

/// A standard associative container of strings: std::map, std::unordered_map, their multi
/// forms, and look-alikes such as httplib::Headers (a case-insensitive multimap).
template <class M>
concept header_map = requires(M& map, const M& cmap, const typename M::key_type& key) {
  typename M::key_type;
  typename M::mapped_type;
  requires std::constructible_from<typename M::key_type, std::string>;
  requires std::convertible_to<const typename M::key_type&, std::string_view>;
  requires std::constructible_from<typename M::mapped_type, std::string>;
  requires std::convertible_to<const typename M::mapped_type&, std::string_view>;
  cmap.equal_range(key);
  map.erase(map.begin());
  map.emplace(std::string(), std::string());
};

/// Calls `read(pieces, count)` with the values `for_each(add)` passes to `add`, in order, to be
/// read as one list joined by `,` (RFC 7230 combination), viewed where the carrier keeps them,
/// not copied. Returns false, without calling `read`, when there is none.
template <class ForEach, class F>
bool read_values(ForEach&& for_each, F&& read) {
  std::array<std::string_view, 4> few;
  std::vector<std::string_view> many;  // only for a header repeated more than 4 times
  std::size_t count = 0;
  for_each([&](std::string_view value) {
    if (count < few.size()) {
      few[count] = value;
    } else {
      if (many.empty()) many.assign(few.begin(), few.end());
      many.push_back(value);
    }
    ++count;
  });
  if (count == 0) return false;
  read(count <= few.size() ? few.data() : many.data(), count);
  return true;
}

/// Calls `read(pieces, count)` with all values of header `name` in `map` (see read_values): an
/// exact-key lookup first (which a case-insensitive comparator makes case-insensitive), then,
/// only when that finds nothing, a case-insensitive scan. Returns false, without calling
/// `read`, when there is none.
template <header_map M, class F>
bool map_read(const M& map, std::string_view name, F&& read) {
  return read_values(
      [&](const auto& add) {
        const typename M::key_type key(std::string{name});
        bool found = false;
        for (auto [it, end] = map.equal_range(key); it != end; ++it) {
          add(std::string_view(it->second));
          found = true;
        }
        if (found) return;
        for (const auto& entry : map) {
          if (iequals(std::string_view(entry.first), name)) add(std::string_view(entry.second));
        }
      },
      std::forward<F>(read));
}

/// Removes every entry of `map` whose key equals `name` case-insensitively.
template <header_map M>
void map_erase(M& map, std::string_view name) {
  for (auto it = map.begin(); it != map.end();) {
    if (iequals(std::string_view(it->first), name)) {
      it = map.erase(it);
    } else {
      ++it;
    }
  }
}

/// Calls `read(pieces, count)` with the value(s) of header `name` in `carrier`, viewed where
/// the carrier keeps them (a header of megabytes is never copied); false, without calling it,
/// when the header is absent.
template <class C, class F>
bool read_header(const C& carrier, std::string_view name, F&& read) {
  if constexpr (adapted_reader<C>) {
    return read_values([&](const auto& add) { CarrierTraits<C>::for_each(carrier, name, add); },
                       std::forward<F>(read));
  } else if constexpr (custom_reader<C>) {
    const std::string key(name);
    const auto& result = carrier.get(key);  // a temporary lives as long as the reference
    const std::optional<std::string_view> value = header_view(result);
    if (!value) return false;
    read(&*value, std::size_t{1});
    return true;
  } else {
    return map_read(carrier, name, std::forward<F>(read));
  }
}

template <class C>
void carrier_set(C& carrier, std::string_view name, std::string value) {
  if constexpr (adapted_writer<C>) {
    CarrierTraits<C>::set(carrier, name, std::move(value));
  } else if constexpr (custom_writer<C>) {
    carrier.set(std::string(name), std::move(value));
  } else {
    map_erase(carrier, name);
    carrier.emplace(std::string(name), std::move(value));
  }
}

/// Whether `C` can remove a header: a carrier of its own with `erase(name)`, such as
/// EnvironmentCarrier. Such a carrier is made to describe exactly the injected context. A
/// CarrierTraits specialisation takes precedence: its carrier is written as a map is (Beast's
/// fields have `set` and `erase` of their own, but are headers, not an environment).
template <class C>
concept erasing_writer =
    !adapted_writer<C> && custom_writer<C> && requires(C & carrier, std::string name) {
  carrier.erase(std::move(name));
};

/// Removes header `name`: from a map or an adapted carrier (any case) or through the carrier's
/// `erase`; a carrier with neither keeps it.
template <class C>
void carrier_erase(C& carrier, std::string_view name) {
  if constexpr (adapted_writer<C>) {
    CarrierTraits<C>::erase(carrier, name);
  } else if constexpr (erasing_writer<C>) {
    carrier.erase(std::string(name));
  } else if constexpr (!custom_writer<C>) {
    map_erase(carrier, name);
  }
}

}  // namespace detail

/// A carrier `extract` can read: a type with `get(name)` returning `std::optional<string>`,
/// a string (empty meaning absent) or a pointer (nullptr meaning absent); a standard
/// associative container from string to string (`std::map`, `std::unordered_map`, the multi
/// forms, `httplib::Headers`), read case-insensitively with repeated headers joined by `,`; or
/// a type made one by a CarrierTraits specialisation (Beast's fields, requests and responses
/// with ucm/propagation/beast.hpp), read the same way.
template <class C>
concept ReadableCarrier =
    detail::adapted_reader<C> || detail::custom_reader<C> || detail::header_map<C>;

/// A carrier `inject` can write: a type with `set(name, value)` (and, optionally,
/// `erase(name)`: see `inject`); a standard associative container from string to string,
/// where `inject` replaces any entry whose key matches case-insensitively with one lower-case
/// key; or a type made one by a CarrierTraits specialisation, written the same way.
template <class C>
concept WritableCarrier =
    detail::adapted_writer<C> || detail::custom_writer<C> || detail::header_map<C>;

/// The process environment as a carrier, the OpenTelemetry convention for a child process:
/// header `traceparent` is variable `TRACEPARENT`, `tracestate` is `TRACESTATE`, `baggage` is
/// `BAGGAGE` (upper case; other characters than letters and digits become `_`).
///
///     ucm::w3c::inject(ucm::w3c::EnvironmentCarrier{});   // parent, before fork/exec/spawn
///     ucm::ContextFrameScope s(ucm::w3c::extract(ucm::w3c::EnvironmentCarrier{}));  // child
///
/// `set` and `erase` change this process's environment (setenv/unsetenv), which children
/// inherit; like any environment change they must not race with other threads reading it.
/// Because it has `erase`, `inject` unsets the variables the context has nothing for, so a
/// child never receives what this process itself inherited.
class EnvironmentCarrier {
 public:
  /// The environment variable name for a header name.
  [[nodiscard]] static std::string variable_name(std::string_view header) {
    std::string name(header);
    for (char& c : name) {
      if (c >= 'a' && c <= 'z') {
        c = static_cast<char>(c - 'a' + 'A');
      } else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
        c = '_';
      }
    }
    return name;
  }

  /// The variable for `header`, or nullopt when unset.
  [[nodiscard]] std::optional<std::string> get(const std::string& header) const {
    const std::string name = variable_name(header);
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  }

  /// Sets the variable for `header` in this process's environment. Throws
  /// `std::system_error` when the environment cannot take it (out of memory).
  void set(const std::string& header, const std::string& value) const {
    const std::string name = variable_name(header);
#if defined(_WIN32)
    const int error = ::_putenv_s(name.c_str(), value.c_str());
#else
    const int error = ::setenv(name.c_str(), value.c_str(), 1) == 0 ? 0 : errno;  // NOLINT
#endif
    if (error != 0) {
      throw std::system_error(error, std::generic_category(), "ucm::w3c: setenv " + name);
    }
  }

  /// Removes the variable for `header` from this process's environment.
  void erase(const std::string& header) const {
    const std::string name = variable_name(header);
#if defined(_WIN32)
    ::_putenv_s(name.c_str(), "");
#else
    ::unsetenv(name.c_str());                                                     // NOLINT(concurrency-mt-unsafe)
#endif
  }
};

}  // namespace ucm::w3c
