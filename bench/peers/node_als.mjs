// SPDX-License-Identifier: MIT
// Node's AsyncLocalStorage, measured the way ucm's suite measures ucm: each operation beside
// baselines of its own language timed in the same process, repetitions interleaved (so an
// operation and its baselines sample the same moments of a noisy machine), medians.
//
//     node bench/peers/node_als.mjs [--repetitions=N] [--ms=M]
//
// Prints JSON on stdout: per benchmark the median, min and max ns per operation, the loop
// included (an empty loop is reported as `loop` so its share can be seen; it is well under a
// nanosecond once optimised). Every loop is its own function, so each call site stays
// monomorphic for the JIT, and every result goes to a sink so nothing is dead code.
//
// Operations (the rows of bench/report.py's "ucm and its peers" table):
//   get           als.getStore() inside als.run(store, ...)
//   capture       AsyncLocalStorage.snapshot() taken and dropped
//   capture_async_resource
//                 new AsyncResource(type) taken and dropped (what snapshot() and bind() wrap;
//                 Node 20's bind() then defines properties on the new function, which is most
//                 of snapshot()'s cost)
//   continuation  a function bound with AsyncResource.bind(fn), called
//   continuation_run_in_async_scope
//                 resource.runInAsyncScope(fn, null, x) (what the bound function calls)
//   call_window   als.run(store, fn): one value set for the duration of a call
//   with_4        4 nested als.run of 4 storages, one value each
// Baselines: a module variable read (read), a direct call of the small function the operations
// call (call; V8 may inline it, as it may inline it into als.run), an object allocated and kept
// alive in a ring (alloc).
import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")),
);
const repetitions = Number(args.repetitions ?? 11);
const targetMs = Number(args.ms ?? 40); // per repetition of each benchmark

// The sink: every loop returns a value folded into it, and it is printed (to stderr) at the end.
let sink = 0;
// Objects kept alive so that allocations escape (a ring, so memory stays bounded).
const keep = new Array(1024).fill(null);

// The module variable the read baseline reads; written once after the loops so it stays mutable.
let moduleValue = { id: 1 };

function small(x) {
  return x + 1;
}

const als = new AsyncLocalStorage();
const stores = [new AsyncLocalStorage(), new AsyncLocalStorage(), new AsyncLocalStorage(),
                new AsyncLocalStorage()];
const store = { id: 7 };

// Each: a loop of n operations returning a number for the sink.
const benchmarks = {
  loop(n) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += i;
    return acc;
  },
  baseline_read(n) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += moduleValue.id;
    return acc;
  },
  baseline_call(n) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc = small(acc);
    return acc;
  },
  baseline_alloc(n) {
    for (let i = 0; i < n; i++) keep[i & 1023] = { id: i };
    return keep[0].id;
  },
  get(n) {
    // Inside a run, as ucm's get runs inside a window.
    return als.run(store, () => {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += als.getStore().id;
      return acc;
    });
  },
  capture(n) {
    return als.run(store, () => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const snapshot = AsyncLocalStorage.snapshot();
        acc += snapshot.length; // taken and dropped
      }
      return acc;
    });
  },
  capture_async_resource(n) {
    return als.run(store, () => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const resource = new AsyncResource("ucm-bench");
        acc += resource.asyncId() & 1; // taken and dropped
      }
      return acc;
    });
  },
  continuation(n) {
    const bound = als.run(store, () => AsyncResource.bind(small));
    let acc = 0;
    for (let i = 0; i < n; i++) acc = bound(acc);
    return acc;
  },
  continuation_run_in_async_scope(n) {
    const resource = als.run(store, () => new AsyncResource("ucm-bench"));
    let acc = 0;
    for (let i = 0; i < n; i++) acc = resource.runInAsyncScope(small, null, acc);
    return acc;
  },
  call_window(n) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc = als.run(store, small, acc);
    return acc;
  },
  with_4(n) {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc = stores[0].run(store, () =>
        stores[1].run(store, () => stores[2].run(store, () => stores[3].run(store, small, acc))));
    }
    return acc;
  },
};

function time(fn, n) {
  const start = process.hrtime.bigint();
  sink = (sink + fn(n)) | 0;
  return Number(process.hrtime.bigint() - start);
}

// Warm-up and calibration: grow n until one run takes a tenth of the target (by then the
// optimising compiler has taken the loop), then size n from the fastest of 3 more runs.
function calibrate(fn) {
  const target = targetMs * 1e6;
  let n = 100;
  for (let i = 0; i < 10; i++) time(fn, n);
  while (time(fn, n) < target / 10 && n < 1e9) n *= 4;
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, time(fn, n));
  return Math.max(100, Math.round((n * target) / best));
}

const names = Object.keys(benchmarks);
const iterations = Object.fromEntries(names.map((name) => [name, calibrate(benchmarks[name])]));
const samples = Object.fromEntries(names.map((name) => [name, []]));
for (let r = 0; r < repetitions; r++) {
  // A different order each repetition, so no benchmark always follows the same one.
  const order = [...names];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const name of order) {
    samples[name].push(time(benchmarks[name], iterations[name]) / iterations[name]);
  }
}
moduleValue = { id: 2 };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const result = {
  implementation: "node",
  version: process.version,
  api: "node:async_hooks AsyncLocalStorage / AsyncResource",
  repetitions,
  unit: "ns per operation, loop included",
  benchmarks: Object.fromEntries(names.map((name) => [name, {
    median_ns: median(samples[name]),
    min_ns: Math.min(...samples[name]),
    max_ns: Math.max(...samples[name]),
    iterations: iterations[name],
  }])),
};
process.stdout.write(JSON.stringify(result, null, 2) + "\n");
process.stderr.write(`node_als: sink ${sink}\n`);
