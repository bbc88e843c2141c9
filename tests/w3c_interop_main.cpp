// SPDX-License-Identifier: MIT
// tests/w3c_interop_main.cpp: the ucm side of the interoperability test against OpenTelemetry
// JS (tests/interop/otel_interop.mjs drives it). It reads one request a line on stdin and
// writes one answer a line on stdout:
//
//   extract <traceparent> <tracestate> <baggage>
//     -> trace <trace-id> <parent-id> <flags> <n> (<key> <value>){n}   or  notrace
//        baggage <n> (<key> <value> <properties>){n}                   or  nobaggage
//        codec <tenant>                                                or  nocodec
//   inject <trace-id|_> <parent-id|_> <flags> <n> (<key> <value>){n}
//          <m> (<key> <value> <properties>){m} <tenant>
//     -> <traceparent> <tracestate> <baggage>
//
// Every string is `_` when absent, else `x` followed by the hex of its bytes, so any header
// text (OWS, tabs, UTF-8) travels unharmed. Properties are written as ucm formats them
// (`p1;p2=v`). <tenant> is the ContextVariable<std::string> registered as baggage codec
// `tenant`, the test of a user's variable riding in baggage.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ucm/propagation/w3c.hpp"

namespace {

ucm::ContextVariable<std::string> tenant;

std::string hex_field(const std::optional<std::string>& text) {
  if (!text) return "_";
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "x";
  for (const char c : *text) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 0x0F]);
  }
  return out;
}

std::optional<std::string> unhex_field(const std::string& field) {
  if (field == "_") return std::nullopt;
  if (field.empty() || field[0] != 'x' || field.size() % 2 != 1) {
    throw std::runtime_error("bad field: " + field);
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < field.size(); i += 2) {
    const int hi = ucm::w3c::detail::hex_value(field[i]);
    const int lo = ucm::w3c::detail::hex_value(field[i + 1]);
    if (hi < 0 || lo < 0) throw std::runtime_error("bad hex: " + field);
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string format_properties(const std::vector<ucm::w3c::BaggageProperty>& properties) {
  std::string out;
  for (const auto& p : properties) {
    if (!out.empty()) out.push_back(';');
    out += p.key;
    if (p.value) out += "=" + *p.value;
  }
  return out;
}

std::string answer_extract(std::istringstream& in) {
  std::string traceparent;
  std::string tracestate;
  std::string baggage;
  in >> traceparent >> tracestate >> baggage;
  std::map<std::string, std::string> headers;
  if (auto v = unhex_field(traceparent)) headers["traceparent"] = *v;
  if (auto v = unhex_field(tracestate)) headers["tracestate"] = *v;
  if (auto v = unhex_field(baggage)) headers["baggage"] = *v;

  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  std::ostringstream out;
  if (const ucm::w3c::TraceContext* context = frame.get(ucm::w3c::trace_context)) {
    out << "trace " << context->trace_id.to_hex() << ' ' << context->parent_id.to_hex() << ' '
        << static_cast<int>(context->flags) << ' ' << context->state.size();
    for (const auto& member : context->state) {
      out << ' ' << hex_field(member.key) << ' ' << hex_field(member.value);
    }
  } else {
    out << "notrace";
  }
  if (const ucm::w3c::Baggage* bag = frame.get(ucm::w3c::baggage)) {
    out << " baggage " << bag->size();
    for (const auto& member : *bag) {
      out << ' ' << hex_field(member.key) << ' ' << hex_field(member.value) << ' '
          << (member.properties.empty() ? std::string("_")
                                        : hex_field(format_properties(member.properties)));
    }
  } else {
    out << " nobaggage";
  }
  if (const std::string* value = frame.get(tenant)) {
    out << " codec " << hex_field(*value);
  } else {
    out << " nocodec";
  }
  return out.str();
}

std::string answer_inject(std::istringstream& in) {
  std::string trace_id;
  std::string parent_id;
  int flags = 0;
  std::size_t state_size = 0;
  in >> trace_id >> parent_id >> flags >> state_size;
  std::optional<ucm::w3c::TraceContext> context;
  if (trace_id != "_") {
    context.emplace();
    context->trace_id = ucm::w3c::TraceId::from_hex(trace_id).value();
    context->parent_id = ucm::w3c::SpanId::from_hex(parent_id).value();
    context->flags = static_cast<std::uint8_t>(flags);
  }
  if (!context && state_size != 0) throw std::runtime_error("tracestate without traceparent");
  std::vector<std::pair<std::string, std::string>> state;
  for (std::size_t i = 0; i < state_size; ++i) {
    std::string key;
    std::string value;
    in >> key >> value;
    state.emplace_back(unhex_field(key).value(), unhex_field(value).value());
  }
  // `set` puts each key at the front: add right to left to keep the order.
  for (auto it = state.rbegin(); it != state.rend(); ++it)
    context->state.set(it->first, it->second);

  std::size_t baggage_size = 0;
  in >> baggage_size;
  std::optional<ucm::w3c::Baggage> bag;
  if (baggage_size > 0) bag.emplace();
  for (std::size_t i = 0; i < baggage_size; ++i) {
    std::string key;
    std::string value;
    std::string properties;
    in >> key >> value >> properties;
    std::vector<ucm::w3c::BaggageProperty> parsed;
    if (auto text = unhex_field(properties)) {
      // The properties grammar is the baggage parser's: borrow it.
      const auto holder = ucm::w3c::Baggage::parse("k=v;" + *text);
      if (!holder) throw std::runtime_error("bad properties: " + *text);
      parsed = holder->begin()->properties;
    }
    bag->set(unhex_field(key).value(), unhex_field(value).value(), std::move(parsed));
  }
  std::string tenant_field;
  in >> tenant_field;
  const std::optional<std::string> tenant_value = unhex_field(tenant_field);

  ucm::ContextFrame frame;
  if (context) frame = frame.with(ucm::w3c::trace_context, *context);
  if (bag) frame = frame.with(ucm::w3c::baggage, *bag);
  if (tenant_value) frame = frame.with(tenant, *tenant_value);
  std::map<std::string, std::string> headers;
  frame.inherit([&] { ucm::w3c::inject(headers); });

  const auto header = [&](const char* name) -> std::optional<std::string> {
    const auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  };
  return hex_field(header("traceparent")) + ' ' + hex_field(header("tracestate")) + ' ' +
         hex_field(header("baggage"));
}

}  // namespace

int main() {
  const auto registration = ucm::w3c::register_baggage_codec(tenant, "tenant");
  std::string line;
  std::size_t count = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::istringstream in(line);
    std::string op;
    in >> op;
    try {
      if (op == "extract") {
        std::cout << answer_extract(in) << '\n';
      } else if (op == "inject") {
        std::cout << answer_inject(in) << '\n';
      } else {
        std::cout << "error unknown-op\n";
      }
    } catch (const std::exception& e) {
      std::cout << "error " << hex_field(std::string(e.what())) << '\n';
    }
    ++count;
  }
  std::cout.flush();
  std::fprintf(stderr, "w3c_interop: answered %zu requests\n", count);
  return 0;
}
