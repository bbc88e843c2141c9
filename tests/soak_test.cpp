// SPDX-License-Identifier: MIT
// The soak and fault test at a small size (tests/soak.hpp): a real Asio server on 127.0.0.1,
// connection-loop Tasks handling requests one after another, each request entered through a
// scope, the manager or W3C extract, hopping through use_task, a ContextExecutor pool,
// ContextFrame::bind, propagate callbacks, a child Task and a when_all; 1% planned faults. The
// full size (1,000,000 requests over 1,000 connections) is the program bench/soak.cpp
// (`ucm_soak --full`, docs/soak.md).
//
// Catch2 is not thread-safe: the server and client count on their own threads, and the cases
// check the counts on the main thread once the run is over.
#include "soak.hpp"

#include <catch2/catch.hpp>

#include <cstdio>

using ucm_soak::Expected;
using ucm_soak::Observation;
using ucm_soak::Options;
using ucm_soak::Reply;
using ucm_soak::Report;

namespace {

/// The small size: 16 connections x 500 requests, 2 server I/O threads, 2 pool threads.
Options small_size(bool with_ucm) {
  Options o;
  o.connections = 16;
  o.requests = 500;
  o.ucm = with_ucm;
  o.verbose = true;  // the first mismatching replies go to stderr
  return o;
}

void check_passed(const Options& o, const Report& r) {
  ucm_soak::print_report(stdout, o, r, false);
  CHECK_FALSE(r.deadline_reached);
  CHECK(r.completed == r.expected);
  CHECK(r.mismatched_requests == 0);
  CHECK(r.mismatched_observations == 0);
  CHECK(r.planned_faults > 0);  // the seed plans some faults at this size
  CHECK(r.planned_errors == r.planned_faults);
  CHECK(r.unplanned_errors == 0);
  CHECK(r.transport_errors == 0);
  CHECK(r.server_io_errors == 0);
}

/// A reply as a correct server sends it for `e`, every slot recorded.
Reply correct_reply(const Expected& e) {
  Reply r{};
  r.rid = e.rid;
  r.status = ucm_soak::status_ok;
  for (unsigned s = 0; s < ucm_soak::slot_count; ++s) {
    r.slots[s].flags = ucm_soak::recorded_flag;
    if (s < ucm_soak::hop_count) {
      r.slots[s].rid = e.rid;
      r.slots[s].trace = e.trace;
    }
  }
  return r;
}

}  // namespace

TEST_CASE(
    "under load, every hop of every request sees its own request's context and nothing of "
    "another request's, and only the planned faults fail",
    "[soak][asio][tcp][threads]") {
  const Options o = small_size(true);
  check_passed(o, ucm_soak::run_soak(o));
}

TEST_CASE("the same soak server without ucm, passing the ids explicitly, passes the same checks",
          "[soak][asio][tcp][threads]") {
  const Options o = small_size(false);
  check_passed(o, ucm_soak::run_soak(o));
}

TEST_CASE("the soak's client counts a foreign, earlier or missing value at any hop as a mismatch",
          "[soak][check]") {
  const Expected e{42, ucm_soak::trace_of(42, 1), -1};
  const Expected earlier{41, ucm_soak::trace_of(41, 1), -1};
  CHECK(ucm_soak::check_reply(e, correct_reply(e)).bad_slots == 0);

  SECTION("get() shows another request's id or trace") {
    Reply r = correct_reply(e);
    r.slots[ucm_soak::on_pool].rid = earlier.rid;
    r.slots[ucm_soak::branch_b].trace = earlier.trace;
    CHECK(ucm_soak::check_reply(e, r).bad_slots ==
          ((1u << ucm_soak::on_pool) | (1u << ucm_soak::branch_b)));
  }
  SECTION("get_inherited() or inherited_all() shows an earlier request") {
    Reply r = correct_reply(e);
    r.slots[ucm_soak::after_child].inherited_rid = earlier.rid;
    r.slots[ucm_soak::after_when_all].merged_trace = {e.trace, earlier.trace};
    CHECK(ucm_soak::check_reply(e, r).bad_slots ==
          ((1u << ucm_soak::after_child) | (1u << ucm_soak::after_when_all)));
  }
  SECTION("anything at all is visible before the request is entered or after its window") {
    Reply r = correct_reply(e);
    r.slots[ucm_soak::before].rid = earlier.rid;
    r.slots[ucm_soak::after].frames = 1;  // a variable still bound, whichever
    CHECK(ucm_soak::check_reply(e, r).bad_slots ==
          ((1u << ucm_soak::before) | (1u << ucm_soak::after)));
  }
  SECTION("a hop of a completed request is missing") {
    Reply r = correct_reply(e);
    r.slots[ucm_soak::bound] = Observation{};
    CHECK(ucm_soak::check_reply(e, r).bad_slots == (1u << ucm_soak::bound));
  }
  SECTION("only the planned fault counts as a planned error") {
    const Expected faulty{42, e.trace, ucm_soak::callback};
    Reply r = correct_reply(e);
    r.status = ucm_soak::status_planned_fault;
    for (unsigned s = ucm_soak::callback + 1; s < ucm_soak::hop_count; ++s) r.slots[s] = {};
    const ucm_soak::Verdict planned = ucm_soak::check_reply(faulty, r);
    CHECK(planned.bad_slots == 0);
    CHECK(planned.planned_error);
    CHECK_FALSE(planned.unplanned_error);
    CHECK(ucm_soak::check_reply(e, r).unplanned_error);  // a fault nobody planned
    CHECK(ucm_soak::check_reply(faulty, correct_reply(e)).unplanned_error);  // it did not happen
  }
}
