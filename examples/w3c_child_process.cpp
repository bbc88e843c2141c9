// SPDX-License-Identifier: MIT
// Shows: a child process continuing its parent's trace. The parent starts a W3C trace, sets
// baggage and a user variable that rides in baggage through a codec, injects the context into
// its environment (TRACEPARENT, TRACESTATE, BAGGAGE: the OpenTelemetry convention) and runs
// itself again as a child. The child extracts the context from its environment, runs as a
// continuation of its parent, and starts its own span in the same trace. Exits 0 when the child
// saw the parent's trace, baggage and variable.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <ucm/propagation/w3c.hpp>
#include <ucm/ucm.hpp>

extern char** environ;

namespace {

// An application variable: which tenant the work is for. Registered as the baggage member
// "tenant", so it crosses the process boundary with the trace.
ucm::ContextVariable<std::string> tenant;
const auto tenant_codec = ucm::w3c::register_baggage_codec(tenant, "tenant");

// Deep inside the child: reads the context without any parameter.
void child_work() {
  const ucm::w3c::TraceContext* span = ucm::w3c::trace_context.get();
  const ucm::w3c::Baggage* baggage = ucm::w3c::baggage.get();
  std::printf("child  pid %d: trace %s, span %s, tenant %s, baggage \"%s\"\n",
              static_cast<int>(::getpid()), span->trace_id.to_hex().c_str(),
              span->parent_id.to_hex().c_str(), tenant.get()->c_str(),
              baggage->to_header().c_str());
}

int run_child(const char* expected_trace_id) {
  // The whole child is a continuation of the parent's context.
  ucm::ContextFrameScope scope(ucm::w3c::extract(ucm::w3c::EnvironmentCarrier{}));
  const ucm::w3c::TraceContext* parent = ucm::w3c::trace_context.get();
  if (parent == nullptr || parent->trace_id.to_hex() != expected_trace_id) {
    std::fprintf(stderr, "child: the parent's trace did not arrive\n");
    return 1;
  }
  if (tenant.get() == nullptr || *tenant.get() != "acme corp" ||
      ucm::w3c::baggage.get() == nullptr || ucm::w3c::baggage.get()->get("user.id") == nullptr) {
    std::fprintf(stderr, "child: the baggage did not arrive\n");
    return 1;
  }
  std::printf("child  pid %d: parent span %s\n", static_cast<int>(::getpid()),
              parent->parent_id.to_hex().c_str());
  // A new span of the child's own, below the parent's.
  ucm::w3c::trace_context.run(parent->child(), child_work);
  return 0;
}

int run_parent(const char* self) {
  ucm::w3c::TraceContext trace = ucm::w3c::TraceContext::new_trace();
  trace.state.set("ucm", "example");
  const ucm::w3c::Baggage baggage = ucm::w3c::Baggage{}.with("user.id", "alice smith");

  return ucm::with(ucm::w3c::trace_context, trace)
      .with(ucm::w3c::baggage, baggage)
      .with(tenant, std::string("acme corp"))
      .run([&] {
        std::printf("parent pid %d: trace %s, span %s\n", static_cast<int>(::getpid()),
                    trace.trace_id.to_hex().c_str(), trace.parent_id.to_hex().c_str());
        // The environment the child inherits now carries the context.
        ucm::w3c::inject(ucm::w3c::EnvironmentCarrier{});
        std::printf("parent: TRACEPARENT=%s TRACESTATE=%s BAGGAGE=%s\n", std::getenv("TRACEPARENT"),
                    std::getenv("TRACESTATE"), std::getenv("BAGGAGE"));

        std::string trace_id = trace.trace_id.to_hex();
        std::string flag = "--child";
        char* child_argv[] = {const_cast<char*>(self), flag.data(), trace_id.data(), nullptr};
        pid_t pid = 0;
        if (const int error = ::posix_spawn(&pid, self, nullptr, nullptr, child_argv, environ)) {
          std::fprintf(stderr, "parent: posix_spawn failed: %s\n", std::strerror(error));
          return 1;
        }
        int status = 0;
        if (::waitpid(pid, &status, 0) != pid) return 1;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        std::printf("parent: the child %s the trace\n", ok ? "continued" : "did NOT continue");
        return ok ? 0 : 1;
      });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--child") == 0) return run_child(argv[2]);
  // Run this very program again: /proc/self/exe on Linux, else the path we were started by.
  const char* self = ::access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];
  return run_parent(self);
}
