// SPDX-License-Identifier: MIT
// ucm/spdlog.hpp: context in every log line (CMake target `ucm::spdlog`, Debian's
// libspdlog-dev): a pattern flag for spdlog that writes chosen context variables (a request id,
// the trace id, the user) into each line, MDC-style, with no parameter passed to the log call.
// The core never includes this header.
//
//     ucm::spdlog::ContextFields fields;
//     fields.add(request_id)                                           // key: the variable's name
//           .add("trace", ucm::w3c::trace_context,
//                [](const ucm::w3c::TraceContext& t) { return t.trace_id; });
//     logger->set_formatter(ucm::spdlog::context_formatter("[%Q] %v", std::move(fields)));
//     logger->info("charged");           // [request_id=r-42 trace=4bf92f35...] charged
//
// The flag reads the context of the thread that formats the line: spdlog's synchronous loggers
// format in the logging call, so every line carries the context of the code that logged it.
// An asynchronous logger (spdlog::async_logger) formats later on its own thread, which has no
// such context: use synchronous sinks with this flag.
#pragma once

#include <concepts>
#include <ctime>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/common.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>

#include "ucm/fmt.hpp"
#include "ucm/variable.hpp"

#if !defined(SPDLOG_FMT_EXTERNAL) && !defined(SPDLOG_FMT_EXTERNAL_HO)
// spdlog's bundled copy of {fmt} would clash with the {fmt} that ucm/fmt.hpp includes.
#error "ucm/spdlog.hpp needs spdlog built against an external {fmt} (SPDLOG_FMT_EXTERNAL)"
#endif

// NOTE: inside namespace ucm::spdlog, spdlog's own names are written ::spdlog.
namespace ucm::spdlog {

/// A type {fmt} can write.
template <class T>
concept log_formattable = fmt::is_formattable<T>::value;

/// A function that makes something {fmt} can write from a `T`.
template <class F, class T>
concept formats_for_log = std::invocable<const F&, const T&> &&
    fmt::is_formattable<std::remove_cvref_t<std::invoke_result_t<const F&, const T&>>>::value;

/// The context variables a log line carries, in order, each as `key=value`; fields whose
/// variable has no value (nor default) in the current context are left out, and the fields are
/// separated by one space. Copyable; build it once and hand it to `context_formatter`. The
/// variables must outlive the loggers that use it.
class ContextFields {
 public:
  /// Adds `variable` under `key`, its value written with {fmt} (`T` must be formattable; include
  /// the header of its fmt::formatter first).
  template <log_formattable T>
  ContextFields& add(std::string key, const ContextVariable<T>& variable) {
    return add(std::move(key), variable, [](const T& value) -> const T& { return value; });
  }

  /// Adds `variable` under its own name (`ucm::named`).
  template <log_formattable T>
  ContextFields& add(const ContextVariable<T>& variable) {
    return add(std::string(variable.name()), variable);
  }

  /// Adds `variable` under `key`, written as `format(value)` (anything {fmt} can write):
  /// `fields.add("trace", ucm::w3c::trace_context, [](const auto& t) { return t.trace_id; })`.
  template <class T, formats_for_log<T> F>
  ContextFields& add(std::string key, const ContextVariable<T>& variable, F format) {
    fields_.push_back(Field{std::move(key), [&variable, format = std::move(format)](
                                                std::string_view k, ::spdlog::memory_buf_t& out) {
                              const T* value = variable.get();
                              if (value == nullptr) return false;
                              fmt::format_to(fmt::appender(out), "{}={}", k,
                                             std::invoke(format, *value));
                              return true;
                            }});
    return *this;
  }

  /// Writes the fields present in the current context to `out`.
  void format_to(::spdlog::memory_buf_t& out) const {
    bool first = true;
    for (const Field& field : fields_) {
      const std::size_t before = out.size();
      if (!first) out.push_back(' ');
      if (field.write(field.key, out)) {
        first = false;
      } else {
        out.resize(before);  // nothing written: drop the separator too
      }
    }
  }

  /// Number of fields.
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }

 private:
  struct Field {
    std::string key;
    std::function<bool(std::string_view, ::spdlog::memory_buf_t&)> write;
  };
  std::vector<Field> fields_;
};

/// The pattern flag: a `spdlog::custom_flag_formatter` that writes `fields` for the context of
/// the thread formatting the line. Register it with `pattern_formatter::add_flag<ContextFlag>`
/// (or use `context_formatter`). Padding specifiers are ignored.
class ContextFlag final : public ::spdlog::custom_flag_formatter {
 public:
  explicit ContextFlag(ContextFields fields)
      : fields_(std::make_shared<const ContextFields>(std::move(fields))) {}
  explicit ContextFlag(std::shared_ptr<const ContextFields> fields) : fields_(std::move(fields)) {}

  void format(const ::spdlog::details::log_msg&, const std::tm&,
              ::spdlog::memory_buf_t& dest) override {
    fields_->format_to(dest);
  }

  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ContextFlag>(fields_);
  }

 private:
  std::shared_ptr<const ContextFields> fields_;  // shared by the clones spdlog makes per sink
};

/// A spdlog pattern formatter for `pattern` in which `%<flag>` (`%Q` by default) writes `fields`.
/// Give it to a logger (`logger->set_formatter(...)`, which clones it for each sink) or a sink.
[[nodiscard]] inline std::unique_ptr<::spdlog::pattern_formatter> context_formatter(
    std::string pattern, ContextFields fields, char flag = 'Q') {
  auto formatter = std::make_unique<::spdlog::pattern_formatter>();
  formatter->add_flag<ContextFlag>(flag, std::move(fields)).set_pattern(std::move(pattern));
  return formatter;
}

}  // namespace ucm::spdlog
