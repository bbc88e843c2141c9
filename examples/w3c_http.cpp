// SPDX-License-Identifier: MIT
// Shows: W3C Trace Context and Baggage over HTTP with cpp-httplib, on 127.0.0.1 with a port the
// OS picks. The client injects its current context into the request headers; the server
// extracts it and handles each request in a scope opened from the extracted frame, on
// whichever of its pool threads runs the request, so code deep in the handler reads the
// caller's trace and baggage without parameters. A request without (or with a malformed)
// traceparent starts a new trace on the server; its baggage still applies. Concurrent requests
// never see each other's context. Exits 0 when every check holds.
//
// Caveat: cpp-httplib servers before 0.44.0 percent-decode every request header value (its
// issue #1789), which turns the baggage `user=alice%20smith` into `user=alice smith`, a
// malformed header that ucm rightly ignores. Debian 12 ships 0.11.4, so the client here escapes
// `%` once more for such servers (see `escape_for_old_httplib_server`).
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <ucm/propagation/w3c.hpp>
#include <ucm/ucm.hpp>
#include <vector>

namespace {

// Deep inside the server: no parameter carries the context.
std::string describe_request() {
  const ucm::w3c::TraceContext* span = ucm::w3c::trace_context.get();
  const ucm::w3c::Baggage* baggage = ucm::w3c::baggage.get();
  const std::string* user = baggage != nullptr ? baggage->get("user") : nullptr;
  return "trace=" + span->trace_id.to_hex() + " span=" + span->parent_id.to_hex() +
         " user=" + (user != nullptr ? *user : std::string("-"));
}

void handle(const httplib::Request& request, httplib::Response& response) {
  // The request runs as a continuation of the caller's context.
  ucm::ContextFrameScope scope(ucm::w3c::extract(request.headers));
  const ucm::w3c::TraceContext* caller = ucm::w3c::trace_context.get();
  // The server's own span: below the caller's, or the root of a new trace.
  const ucm::w3c::TraceContext span =
      caller != nullptr ? caller->child() : ucm::w3c::TraceContext::new_trace();
  ucm::w3c::trace_context.run(span, [&] {
    response.set_header("x-parent-span", caller != nullptr ? caller->parent_id.to_hex() : "-");
    response.set_content(describe_request(), "text/plain");
  });
}

/// Whether this cpp-httplib's server percent-decodes header values (every version before 0.44).
constexpr bool httplib_server_decodes_headers() {
  const std::string_view version = CPPHTTPLIB_VERSION;  // "major.minor.patch"
  int parts[2] = {0, 0};
  int part = 0;
  for (const char c : version) {
    if (c == '.') {
      if (++part == 2) break;
    } else {
      parts[part] = parts[part] * 10 + (c - '0');
    }
  }
  return parts[0] == 0 && parts[1] < 44;
}

/// Protects the `%` of the W3C headers from such a server: it decodes `%25` back to `%`.
void escape_for_old_httplib_server(httplib::Headers& headers) {
  if constexpr (httplib_server_decodes_headers()) {
    for (auto& [name, value] : headers) {
      if (name != "tracestate" && name != "baggage") continue;
      std::string escaped;
      for (const char c : value) escaped += c == '%' ? std::string("%25") : std::string(1, c);
      value = std::move(escaped);
    }
  }
}

std::atomic<int> failures{0};

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// One request made in the current context.
httplib::Result get(int port, httplib::Headers headers = {}) {
  ucm::w3c::inject(headers);
  escape_for_old_httplib_server(headers);
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  return client.Get("/work", headers);
}

}  // namespace

int main() {
  httplib::Server server;
  server.Get("/work", handle);
  const int port = server.bind_to_any_port("127.0.0.1");
  if (port <= 0) {
    std::fprintf(stderr, "cannot bind 127.0.0.1\n");
    return 1;
  }
  std::thread listener([&] { server.listen_after_bind(); });
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("server on 127.0.0.1:%d\n", port);

  // 1. The client's trace and baggage reach the handler.
  const auto trace = ucm::w3c::TraceContext::new_trace();
  ucm::with(ucm::w3c::trace_context, trace)
      .with(ucm::w3c::baggage, ucm::w3c::Baggage{}.with("user", "alice smith"))
      .run([&] {
        const auto result = get(port);
        check(result && result->status == 200, "the request succeeded");
        if (!result) return;
        std::printf("     server: %s\n", result->body.c_str());
        check(result->body.find("trace=" + trace.trace_id.to_hex()) == 0,
              "the server continued the client's trace");
        check(result->get_header_value("x-parent-span") == trace.parent_id.to_hex(),
              "the server's span is a child of the client's");
        check(result->body.find("user=alice smith") != std::string::npos,
              "the baggage arrived decoded");
      });

  // 2. A malformed traceparent is ignored: a new trace starts, the baggage still applies.
  ucm::ContextFrame{}.inherit([&] {
    const auto result =
        get(port, {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
                   {"baggage", "user=bob"}});
    check(result && result->get_header_value("x-parent-span") == "-",
          "a malformed traceparent starts a new trace");
    check(result && result->body.find("user=bob") != std::string::npos,
          "the baggage of that request still applies");
  });

  // 3. Concurrent requests on the server's pool never see each other's context.
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([i, port] {
      const auto own = ucm::w3c::TraceContext::new_trace();
      const std::string user = "user" + std::to_string(i);
      ucm::with(ucm::w3c::trace_context, own)
          .with(ucm::w3c::baggage, ucm::w3c::Baggage{}.with("user", user))
          .run([&] {
            const auto result = get(port);
            const std::string prefix = "trace=" + own.trace_id.to_hex() + " span=";
            const std::string suffix = " user=" + user;
            check(result && result->body.starts_with(prefix) && result->body.ends_with(suffix),
                  "concurrent request " + std::to_string(i) + " saw only its own context");
          });
    });
  }
  for (auto& client : clients) client.join();

  server.stop();
  listener.join();
  std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
  return failures == 0 ? 0 : 1;
}
