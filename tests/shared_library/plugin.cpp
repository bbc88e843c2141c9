// SPDX-License-Identifier: MIT
#include "plugin.hpp"

#include <memory>

#include "ucm/propagation/w3c.hpp"
#include "ucm/scope.hpp"

namespace plugin {

int get(const ucm::ContextVariable<int>& v) { return v.value_or(-1); }

void run(const ucm::ContextVariable<int>& v, int value, void (*fn)()) { v.run(value, fn); }

const ucm::ContextVariable<int>& variable() {
  static const ucm::ContextVariable<int> instance;
  return instance;
}

void close_scopes_out_of_order(const ucm::ContextVariable<int>& v) {
  auto a = std::make_unique<ucm::ContextVariableScope<int>>(v, 1);
  auto b = std::make_unique<ucm::ContextVariableScope<int>>(v, 2);
  a.reset();
  b.reset();
}

namespace {
ucm::Task<int> child(const ucm::ContextVariable<int>& v) {
  const int seen = v.value_or(-1);
  v.enter(seen + 1);
  co_return seen;
}
}  // namespace

ucm::Task<int> task(const ucm::ContextVariable<int>& v) {
  const int seen = co_await child(v);
  const int* set = v.get_inherited();
  co_return seen * 1000 + (set != nullptr ? *set : -1);
}

void inject(std::map<std::string, std::string>& headers) { ucm::w3c::inject(headers); }

void extract_and_run(const std::map<std::string, std::string>& headers, void (*fn)()) {
  ucm::w3c::extract(headers).inherit(fn);
}

namespace {
ucm::w3c::BaggageCodecRegistration registration;
}  // namespace

void register_codec(const ucm::ContextVariable<int>& v, const char* key) {
  registration = ucm::w3c::register_baggage_codec(v, key);
}

void unregister_codec() { registration.reset(); }

}  // namespace plugin
