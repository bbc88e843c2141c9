// SPDX-License-Identifier: MIT
// ucm/propagation/beast.hpp: Boost.Beast's HTTP fields as W3C carriers (target ucm::boost_asio).
// With it, `ucm::w3c::inject` and `ucm::w3c::extract` work directly on
// `boost::beast::http::fields`, and so on `http::request` and `http::response` (which are
// fields), case-insensitively and with repeated headers read as one list, like the map carriers:
//
//     http::request<http::string_body> outgoing{http::verb::get, "/inner", 11};
//     ucm::w3c::inject(outgoing);                        // traceparent, tracestate, baggage
//     ucm::ContextFrameScope caller(ucm::w3c::extract(incoming));   // server: continue the caller
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/fields.hpp>

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ucm/propagation/w3c.hpp"

namespace ucm::w3c {

namespace detail {

/// The `basic_fields` a Beast fields, header or message type is (they derive from it).
template <class Allocator>
const boost::beast::http::basic_fields<Allocator>& beast_fields_of(
    const boost::beast::http::basic_fields<Allocator>& fields) noexcept {
  return fields;
}
template <class Allocator>
boost::beast::http::basic_fields<Allocator>& beast_fields_of(
    boost::beast::http::basic_fields<Allocator>& fields) noexcept {
  return fields;
}

/// Beast's `http::basic_fields`, or a type derived from it (`http::header`, `http::message`,
/// so `http::request` and `http::response`).
template <class C>
concept beast_fields = requires(C& carrier) {
  detail::beast_fields_of(carrier);
};

inline boost::beast::string_view beast_view(std::string_view text) noexcept {
  return {text.data(), text.size()};
}

}  // namespace detail

/// Beast's fields, requests and responses as carriers: headers are looked up and replaced by
/// name, case-insensitively (Beast's own comparison), and a repeated header's values are read in
/// place as one list.
template <class C>
requires detail::beast_fields<C>
struct CarrierTraits<C> {
  template <class F>
  static void for_each(const C& carrier, std::string_view name, F&& visit) {
    const auto& fields = detail::beast_fields_of(carrier);
    for (auto [it, end] = fields.equal_range(detail::beast_view(name)); it != end; ++it) {
      const boost::beast::string_view value = it->value();
      visit(std::string_view(value.data(), value.size()));
    }
  }

  static void set(C& carrier, std::string_view name, std::string value) {
    detail::beast_fields_of(carrier).set(detail::beast_view(name), detail::beast_view(value));
  }

  static void erase(C& carrier, std::string_view name) {
    detail::beast_fields_of(carrier).erase(detail::beast_view(name));
  }
};

}  // namespace ucm::w3c
