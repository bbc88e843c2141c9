// SPDX-License-Identifier: MIT
// Tests of the logging integrations: ucm/spdlog.hpp (the pattern flag that writes context
// variables into each log line) and ucm/fmt.hpp (formatters for W3C types and frames).
#include "ucm/spdlog.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include "thread_pool.hpp"
#include "ucm/fmt.hpp"
#include "ucm/propagation/w3c.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;

namespace {

struct User {
  std::string name;
};

/// A logger writing "<fields>|<message>" lines into a string stream.
struct CapturedLogger {
  explicit CapturedLogger(ucm::spdlog::ContextFields fields)
      : sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out)),
        logger(std::make_shared<spdlog::logger>("test", sink)) {
    logger->set_formatter(ucm::spdlog::context_formatter("%Q|%v", std::move(fields)));
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> result;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;
};

ucm::w3c::TraceContext sample_trace() {
  return *ucm::w3c::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

}  // namespace

TEST_CASE("the context flag writes the chosen variables of the logging code into each line",
          "[logging][spdlog]") {
  const ContextVariable<std::string> request_id{ucm::named("request_id")};
  const ContextVariable<User> user;
  ucm::spdlog::ContextFields fields;
  fields.add(request_id)
      .add("trace", ucm::w3c::trace_context,
           [](const ucm::w3c::TraceContext& t) { return t.trace_id; })
      .add("user", user, [](const User& u) { return u.name; });
  CHECK(fields.size() == 3);
  CapturedLogger log(std::move(fields));

  log.logger->info("outside");
  ucm::with(request_id, "r-42")
      .with(ucm::w3c::trace_context, sample_trace())
      .with(user, User{"alice"})
      .run([&] { log.logger->info("inside"); });
  request_id.run("r-43", [&] { log.logger->warn("only the id"); });
  user.run(User{"bob"}, [&] { log.logger->info("only the user"); });
  CHECK(log.lines() ==
        std::vector<std::string>{
            "|outside",
            "request_id=r-42 trace=4bf92f3577b34da6a3ce929d0e0e4736 user=alice|inside",
            "request_id=r-43|only the id",
            "user=bob|only the user",
        });
}

TEST_CASE("a line logged on a pool thread carries the context the work was posted in",
          "[logging][spdlog][threads]") {
  const ContextVariable<int> request{ucm::named("request")};
  ucm::spdlog::ContextFields fields;
  fields.add(request);
  CapturedLogger log(std::move(fields));
  {
    ucm_test::ThreadPool pool(2);
    for (int i = 1; i <= 4; ++i) {
      request.run(
          i, [&] { pool.post(ContextFrame::bind([&, i] { log.logger->info("job {}", i); })); });
    }
    pool.wait_idle();
  }
  std::vector<std::string> lines = log.lines();
  std::sort(lines.begin(), lines.end());
  CHECK(lines == std::vector<std::string>{"request=1|job 1", "request=2|job 2", "request=3|job 3",
                                          "request=4|job 4"});
}

TEST_CASE("a variable's default is written; the flag letter can be chosen", "[logging][spdlog]") {
  const ContextVariable<std::string> tenant{ucm::named("tenant", "none")};
  ucm::spdlog::ContextFields fields;
  fields.add(tenant);
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("test", sink);
  logger.set_formatter(ucm::spdlog::context_formatter("[%*] %v", std::move(fields), '*'));
  logger.info("a");
  tenant.run("acme", [&] { logger.info("b"); });
  CHECK(out.str() == "[tenant=none] a\n[tenant=acme] b\n");
}

TEST_CASE("fmt writes a trace context as traceparent, trace id or span id", "[logging][fmt]") {
  const ucm::w3c::TraceContext t = sample_trace();
  CHECK(fmt::format("{}", t) == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK(fmt::format("{}", t) == t.traceparent());
  CHECK(fmt::format("{:p}", t) == t.traceparent());
  CHECK(fmt::format("{:t}", t) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(fmt::format("{:s}", t) == "00f067aa0ba902b7");
  CHECK(fmt::format("{}", t.trace_id) == t.trace_id.to_hex());
  CHECK(fmt::format("{}", t.parent_id) == t.parent_id.to_hex());
  CHECK_THROWS_AS(fmt::format(fmt::runtime("{:x}"), t), fmt::format_error);
}

TEST_CASE("fmt writes baggage as its header value", "[logging][fmt]") {
  ucm::w3c::Baggage b;
  b.set("user.id", "alice");
  b.set("note", "a b,c");
  CHECK(fmt::format("{}", b) == b.to_header());
  CHECK(fmt::format("{}", b) == "user.id=alice,note=a%20b%2Cc");
  CHECK(fmt::format("{}", ucm::w3c::Baggage()).empty());
}

TEST_CASE("fmt writes a frame as its debugging listing", "[logging][fmt][names]") {
  const ContextVariable<std::string> id{ucm::named("id").expose()};
  const ContextVariable<std::string> secret{ucm::named("secret")};
  ucm::with(id, "r-1").with(secret, "pw").run([] {
    CHECK(fmt::format("{}", ContextFrame::current()) == "{id=r-1, secret=<hidden>}");
  });
}
