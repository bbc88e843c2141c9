// SPDX-License-Identifier: MIT
// ucm/propagation/baggage_codecs.hpp: baggage codecs, a user's ContextVariable<T> riding in
// W3C baggage (register_baggage_codec, BaggageCodec, default_baggage_codec). Part of
// ucm/propagation/w3c.hpp, which includes it: `inject` and `extract` run the codecs.
#pragma once

#include <array>
#include <atomic>
#include <charconv>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/detail/copy_on_write.hpp"
#include "ucm/propagation/baggage.hpp"
#include "ucm/ucm.hpp"

namespace ucm::w3c {

// =============================================================================================
// Baggage codecs: a user's ContextVariable<T> riding in baggage
// =============================================================================================

/// How a `T` is written as a baggage value and read back. `encode` gives the raw value
/// (percent-encoding is applied on the wire); `decode` receives the decoded value and returns
/// nullopt when it is not a valid `T`.
template <class T>
struct BaggageCodec {
  std::function<std::string(const T&)> encode;               ///< T to text
  std::function<std::optional<T>(std::string_view)> decode;  ///< text to T, or nullopt
};

/// The codec `register_baggage_codec(variable, key)` uses: `std::string` as is, `bool` as
/// `true`/`false`, integers and floating-point numbers through std::to_chars/std::from_chars
/// (the whole value must parse). Other types need an explicit codec.
template <class T>
requires std::same_as<T, std::string> || std::is_arithmetic_v<T>
[[nodiscard]] BaggageCodec<T> default_baggage_codec() {
  if constexpr (std::same_as<T, std::string>) {
    return {[](const std::string& v) { return v; },
            [](std::string_view text) -> std::optional<std::string> { return std::string(text); }};
  } else if constexpr (std::same_as<T, bool>) {
    return {[](const bool& v) { return std::string(v ? "true" : "false"); },
            [](std::string_view text) -> std::optional<bool> {
              if (text == "true") return true;
              if (text == "false") return false;
              return std::nullopt;
            }};
  } else {
    return {[](const T& v) {
              std::array<char, 64> buffer{};
              const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), v);
              return std::string(buffer.data(), result.ptr);
            },
            [](std::string_view text) -> std::optional<T> {
              T value{};
              const char* end = text.data() + text.size();
              const auto result = std::from_chars(text.data(), end, value);
              if (result.ec != std::errc{} || result.ptr != end) return std::nullopt;
              return value;
            }};
  }
}

namespace detail {

/// One registered codec, type-erased.
struct BaggageCodecEntry {
  std::string key;
  /// The variable's binding in `*frame` (or, for nullptr, in this thread's context, the
  /// default excluded) encoded; nullopt when unbound.
  std::function<std::optional<std::string>(const ContextFrame* frame)> encode;
  /// `frame` plus the variable bound to the decoded `value`; nullopt when decoding fails.
  std::function<std::optional<ContextFrame>(const ContextFrame& frame, std::string_view value)>
      decode;
  /// Cleared first when the registration ends, so a snapshot taken just before skips it.
  std::atomic<bool> active{true};
};

using BaggageCodecList = std::vector<std::shared_ptr<BaggageCodecEntry>>;

/// The process-wide codec registry, copied on write (detail/copy_on_write.hpp): inject and
/// extract read it without a lock and run the codecs while holding the reader. One per program
/// (see UCM_SHARED_STATE): a codec registered in one shared library is used by `inject` and
/// `extract` in another.
UCM_SHARED_STATE inline ucm::detail::CopyOnWrite<BaggageCodecList>& baggage_codec_registry() {
  static ucm::detail::CopyOnWrite<BaggageCodecList> registry;
  return registry;
}

/// The codecs registered now, valid while the returned reader lives.
inline ucm::detail::CopyOnWrite<BaggageCodecList>::Reader baggage_codecs() noexcept {
  return baggage_codec_registry().read();
}

}  // namespace detail

/// Keeps a baggage codec registered; unregisters it when destroyed or `reset`. Movable, not
/// copyable. Destroy it before the variable it refers to, and not while an `inject` or
/// `extract` may be running on another thread (defining both at namespace scope, the
/// registration after the variable, does this: it ends first).
class [[nodiscard]] BaggageCodecRegistration {
 public:
  /// An empty registration (registers nothing).
  BaggageCodecRegistration() noexcept = default;
  BaggageCodecRegistration(BaggageCodecRegistration&& other) noexcept
      : entry_(std::move(other.entry_)) {}
  BaggageCodecRegistration& operator=(BaggageCodecRegistration&& other) noexcept {
    if (this != &other) {
      reset();
      entry_ = std::move(other.entry_);
    }
    return *this;
  }
  BaggageCodecRegistration(const BaggageCodecRegistration&) = delete;
  BaggageCodecRegistration& operator=(const BaggageCodecRegistration&) = delete;
  ~BaggageCodecRegistration() { reset(); }

  /// Unregisters the codec now (no effect on an empty registration).
  void reset() noexcept {
    if (!entry_) return;
    entry_->active.store(false, std::memory_order_release);
    try {
      detail::baggage_codec_registry().update(
          [this](detail::BaggageCodecList& codecs) { std::erase(codecs, entry_); });
    } catch (...) {
      // Out of memory: the entry stays in the list but inactive, and is skipped.
    }
    entry_.reset();
  }

  /// Whether a codec is registered through this object.
  [[nodiscard]] explicit operator bool() const noexcept { return entry_ != nullptr; }

 private:
  template <class T>
  friend BaggageCodecRegistration register_baggage_codec(const ContextVariable<T>&, std::string,
                                                         BaggageCodec<T>);
  explicit BaggageCodecRegistration(std::shared_ptr<detail::BaggageCodecEntry> entry) noexcept
      : entry_(std::move(entry)) {}

  std::shared_ptr<detail::BaggageCodecEntry> entry_;
};

/// Makes `variable` ride in baggage under `key`: `inject` writes its binding (if bound; the
/// default is not sent) as a baggage member, replacing the value of a member with the same key
/// in `ucm::w3c::baggage`; `extract` decodes the member into the frame it returns (a value that
/// fails to decode is skipped, the rest of the baggage still applies). The member also stays in
/// `ucm::w3c::baggage`. Throws `std::invalid_argument` when `key` is not a token or another
/// live codec has it, or when `codec` lacks a function.
///
///     inline ucm::ContextVariable<int> tenant;
///     inline auto tenant_codec = ucm::w3c::register_baggage_codec(tenant, "tenant");
template <class T>
BaggageCodecRegistration register_baggage_codec(const ContextVariable<T>& variable, std::string key,
                                                BaggageCodec<T> codec) {
  static_assert(std::move_constructible<T>, "a decoded value is moved into the frame");
  if (!Baggage::is_valid_key(key)) throw std::invalid_argument("ucm::w3c: invalid baggage key");
  if (!codec.encode || !codec.decode) {
    throw std::invalid_argument("ucm::w3c: a baggage codec needs encode and decode");
  }
  auto entry = std::make_shared<detail::BaggageCodecEntry>();
  entry->key = key;
  entry->encode = [&variable,
                   encode = codec.encode](const ContextFrame* frame) -> std::optional<std::string> {
    const T* value = nullptr;
    if (frame != nullptr) {
      value = frame->get(variable);
    } else if (variable.is_bound()) {
      value = variable.get();
    }
    if (value == nullptr) return std::nullopt;
    return encode(*value);
  };
  entry->decode = [&variable, decode = codec.decode](
                      const ContextFrame& frame,
                      std::string_view text) -> std::optional<ContextFrame> {
    std::optional<T> value = decode(text);
    if (!value) return std::nullopt;
    return frame.with(variable, std::move(*value));
  };
  detail::baggage_codec_registry().update([&](detail::BaggageCodecList& codecs) {
    for (const auto& other : codecs) {
      if (other->active.load(std::memory_order_acquire) && other->key == key) {
        throw std::invalid_argument("ucm::w3c: a baggage codec is already registered for " + key);
      }
    }
    codecs.push_back(entry);
  });
  return BaggageCodecRegistration(std::move(entry));
}

/// `register_baggage_codec` with separate encode and decode functions: `encode(const T&)`
/// returns something convertible to `std::string`, `decode(std::string_view)` something
/// convertible to `std::optional<T>`.
template <class T, class Encode, class Decode>
requires std::convertible_to<std::invoke_result_t<const Encode&, const T&>, std::string> &&
    std::convertible_to<std::invoke_result_t<const Decode&, std::string_view>, std::optional<T>>
        BaggageCodecRegistration register_baggage_codec(const ContextVariable<T>& variable,
                                                        std::string key, Encode encode,
                                                        Decode decode) {
  BaggageCodec<T> codec;
  codec.encode = [encode = std::move(encode)](const T& v) { return std::string(encode(v)); };
  codec.decode = [decode = std::move(decode)](std::string_view text) {
    return std::optional<T>(decode(text));
  };
  return register_baggage_codec(variable, std::move(key), std::move(codec));
}

/// `register_baggage_codec` with `default_baggage_codec<T>()` (strings, bool, numbers).
template <class T>
requires std::same_as<T, std::string> || std::is_arithmetic_v<T> BaggageCodecRegistration
register_baggage_codec(const ContextVariable<T>& variable, std::string key) {
  return register_baggage_codec(variable, std::move(key), default_baggage_codec<T>());
}

}  // namespace ucm::w3c
