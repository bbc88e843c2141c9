// SPDX-License-Identifier: MIT
// ucm_soak: the soak and fault test of tests/soak.hpp as a program, at any size.
//
//     ucm_soak --full                      1,000,000 requests over 1,000 connections
//     ucm_soak --connections 8 --requests 250 --seed 7
//     ucm_soak --no-ucm                    the same server without ucm (ids passed explicitly)
//
// Reports mismatches (must be 0), errors (only the planned ones), RSS after warm-up and at the
// end, and throughput; exits 0 when the run passed. scripts/soak.sh runs it under callgrind for
// the server's instructions per request with and without ucm (docs/soak.md).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "soak.hpp"

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: ucm_soak [--full] [--connections N] [--requests N] [--threads N]\n"
               "                [--pool-threads N] [--client-threads N] [--seed N] [--faults N]\n"
               "                [--deadline SECONDS] [--warmup FRACTION] [--entry E] [--lean]\n"
               "                [--no-ucm] [--verbose]\n"
               "  --full            1,000 connections x 1,000 requests (1,000,000 requests)\n"
               "  --connections N   client connections, each a connection-loop Task on the server "
               "(8)\n"
               "  --requests N      requests per connection, one after another (250)\n"
               "  --threads N       server I/O threads (2)\n"
               "  --pool-threads N  threads of the pool behind the ContextExecutor (2)\n"
               "  --client-threads N  the client's threads (2)\n"
               "  --seed N          seeds the trace ids and the planned faults (1)\n"
               "  --faults N        planned faults per thousand requests (10)\n"
               "  --deadline S      stop sending after S seconds; the run then fails (300; 3600 "
               "with --full)\n"
               "  --warmup F        RSS is first sampled after this fraction of the requests "
               "(0.1)\n"
               "  --entry E         enter every request one way: 0 ContextVariableScopes, 1 "
               "run_all,\n"
               "                    2 a w3c::extract window (default: rotate per request)\n"
               "  --lean            hops read only get(), as a server that logs its ids does (for "
               "instruction\n"
               "                    counts); before and after each request every check is kept\n"
               "  --no-ucm          the same server without ucm, passing the ids explicitly\n"
               "  --verbose         print the first mismatching replies\n");
}

bool number(const char* text, unsigned long long& value) {
  char* end = nullptr;
  value = std::strtoull(text, &end, 10);
  return end != text && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  ucm_soak::Options o;
  bool deadline_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    unsigned long long v = 0;
    const auto value = [&](unsigned long long& out) {
      if (i + 1 >= argc || !number(argv[i + 1], out)) {
        std::fprintf(stderr, "ucm_soak: %s needs a number\n", arg.c_str());
        std::exit(2);
      }
      ++i;
    };
    if (arg == "--full") {
      o.connections = 1000;
      o.requests = 1000;
    } else if (arg == "--connections") {
      value(v);
      o.connections = v;
    } else if (arg == "--requests") {
      value(v);
      o.requests = v;
    } else if (arg == "--threads") {
      value(v);
      o.server_threads = static_cast<unsigned>(v);
    } else if (arg == "--pool-threads") {
      value(v);
      o.pool_threads = static_cast<unsigned>(v);
    } else if (arg == "--client-threads") {
      value(v);
      o.client_threads = static_cast<unsigned>(v);
    } else if (arg == "--seed") {
      value(v);
      o.seed = v;
    } else if (arg == "--faults") {
      value(v);
      o.faults_per_thousand = static_cast<unsigned>(v);
    } else if (arg == "--deadline") {
      value(v);
      o.deadline = std::chrono::seconds(v);
      deadline_given = true;
    } else if (arg == "--warmup" && i + 1 < argc) {
      o.warmup = std::strtod(argv[++i], nullptr);
    } else if (arg == "--entry") {
      value(v);
      o.entry = static_cast<int>(v);
    } else if (arg == "--lean") {
      o.lean = true;
    } else if (arg == "--no-ucm") {
      o.ucm = false;
    } else if (arg == "--verbose") {
      o.verbose = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (!deadline_given && o.connections * o.requests >= 1000000) o.deadline = std::chrono::hours(1);
  if (o.connections == 0 || o.requests == 0 || o.server_threads == 0 || o.pool_threads == 0 ||
      o.client_threads == 0 || o.warmup <= 0 || o.warmup >= 1 || o.entry > 2) {
    usage(stderr);
    return 2;
  }
  const ucm_soak::Report report = ucm_soak::run_soak(o);
  ucm_soak::print_report(stdout, o, report, true);
  return report.passed() ? 0 : 1;
}
