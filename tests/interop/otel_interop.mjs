// SPDX-License-Identifier: MIT
// tests/interop/otel_interop.mjs: interoperability of ucm's W3C Trace Context and Baggage
// propagation with OpenTelemetry JS (@opentelemetry/core's W3CTraceContextPropagator and
// W3CBaggagePropagator), field for field, in both directions:
//
//   otel -> ucm   OpenTelemetry injects a context; ucm extracts the headers.
//   ucm -> otel   ucm injects the same context; OpenTelemetry extracts the headers.
//   raw headers   both extract the same literal headers (the specs' examples, OWS, encodings)
//                 and must agree, except for the documented differences listed below, where
//                 each side must behave as documented.
//
// Usage: node otel_interop.mjs <path to the w3c_interop binary>
// The packages come from `npm ci` in this directory. Exits non-zero on any mismatch; prints
// "N passed, M failed" last. Exits 77 (ctest's "skipped") when the packages are missing,
// unless CI is set, where that is a failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const binary = process.argv[2];
if (!binary || !existsSync(binary)) {
  console.error('usage: node otel_interop.mjs <path to the w3c_interop binary>');
  process.exit(2);
}

let api;
let core;
try {
  api = await import('@opentelemetry/api');
  core = await import('@opentelemetry/core');
} catch (error) {
  console.error(`OpenTelemetry packages missing (run "npm ci" in tests/interop): ${error.message}`);
  process.exit(process.env.CI ? 1 : 77);
}
const { ROOT_CONTEXT, trace, propagation, defaultTextMapGetter, defaultTextMapSetter,
  baggageEntryMetadataFromString } = api;
const { W3CTraceContextPropagator, W3CBaggagePropagator, TraceState } = core;
const traceContextPropagator = new W3CTraceContextPropagator();
const baggagePropagator = new W3CBaggagePropagator();

// ---- the wire format shared with w3c_interop_main.cpp -------------------------------------

const hex = (text) => (text === undefined || text === null ? '_' : 'x' + Buffer.from(text, 'utf8').toString('hex'));
const unhex = (field) => (field === '_' ? null : Buffer.from(field.slice(1), 'hex').toString('utf8'));

// ---- a context in the shape both sides are compared in ------------------------------------
//
// { trace: null | { traceId, spanId, flags, tracestate: 'k=v,...' },
//   baggage: null | [[key, value, properties|null], ...] sorted by key,
//   codec: null | string (ucm only: the tenant variable decoded from baggage) }

const sortBaggage = (entries) =>
  entries.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

// OpenTelemetry keeps properties as the raw text after the first ';'; ucm trims OWS.
const normalizeProperties = (raw) => {
  if (raw === undefined || raw === null) return null;
  const parts = raw.split(';').map((p) => p.trim()).filter((p) => p.length > 0).map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? p : `${p.slice(0, eq).trim()}=${p.slice(eq + 1).trim()}`;
  });
  return parts.length === 0 ? null : parts.join(';');
};

function otelExtract(headers) {
  const carrier = {};
  for (const [k, v] of Object.entries(headers)) if (v !== null && v !== undefined) carrier[k] = v;
  let context = traceContextPropagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  context = baggagePropagator.extract(context, carrier, defaultTextMapGetter);
  const spanContext = trace.getSpanContext(context);
  const baggage = propagation.getBaggage(context);
  return {
    trace: spanContext ? {
      traceId: spanContext.traceId,
      spanId: spanContext.spanId,
      flags: spanContext.traceFlags,
      tracestate: spanContext.traceState ? spanContext.traceState.serialize() : '',
    } : null,
    baggage: baggage ? sortBaggage(baggage.getAllEntries().map(([k, entry]) =>
      [k, entry.value, normalizeProperties(entry.metadata?.toString())])) : null,
  };
}

function otelInject(description) {
  let context = ROOT_CONTEXT;
  if (description.trace) {
    const t = description.trace;
    const state = t.tracestate.map(([k, v]) => `${k}=${v}`).join(',');
    context = trace.setSpanContext(context, {
      traceId: t.traceId, spanId: t.spanId, traceFlags: t.flags, isRemote: false,
      traceState: state ? new TraceState(state) : undefined,
    });
  }
  const entries = baggageOf(description);
  if (entries) {
    const record = {};
    for (const [k, v, props] of entries) {
      record[k] = props ? { value: v, metadata: baggageEntryMetadataFromString(props) } : { value: v };
    }
    context = propagation.setBaggage(context, propagation.createBaggage(record));
  }
  const carrier = {};
  traceContextPropagator.inject(context, carrier, defaultTextMapSetter);
  baggagePropagator.inject(context, carrier, defaultTextMapSetter);
  return carrier;
}

// The baggage a description sends: its members plus the tenant codec's member.
function baggageOf(description) {
  const entries = (description.baggage ?? []).map((e) => [e[0], e[1], e[2] ?? null]);
  if (description.tenant !== null && description.tenant !== undefined) {
    entries.push(['tenant', description.tenant, null]);
  }
  return entries.length ? entries : null;
}

function expectedOf(description) {
  const t = description.trace;
  return {
    trace: t ? { traceId: t.traceId, spanId: t.spanId, flags: t.flags,
      tracestate: t.tracestate.map(([k, v]) => `${k}=${v}`).join(',') } : null,
    baggage: baggageOf(description) ? sortBaggage(baggageOf(description)) : null,
  };
}

function extractRequest(headers) {
  return `extract ${hex(headers.traceparent)} ${hex(headers.tracestate)} ${hex(headers.baggage)}`;
}

function injectRequest(description) {
  const t = description.trace;
  const parts = ['inject'];
  if (t) {
    parts.push(t.traceId, t.spanId, String(t.flags), String(t.tracestate.length));
    for (const [k, v] of t.tracestate) parts.push(hex(k), hex(v));
  } else {
    parts.push('_', '_', '0', '0');
  }
  const baggage = description.baggage ?? [];
  parts.push(String(baggage.length));
  for (const [k, v, props] of baggage) parts.push(hex(k), hex(v), hex(props ?? null));
  parts.push(hex(description.tenant ?? null));
  return parts.join(' ');
}

function parseExtractAnswer(line) {
  const tokens = line.split(' ');
  let i = 0;
  const next = () => tokens[i++];
  const result = { trace: null, baggage: null, codec: null };
  if (next() === 'trace') {
    const traceId = next();
    const spanId = next();
    const flags = Number(next());
    const n = Number(next());
    const members = [];
    for (let k = 0; k < n; ++k) members.push(`${unhex(next())}=${unhex(next())}`);
    result.trace = { traceId, spanId, flags, tracestate: members.join(',') };
  }
  if (next() === 'baggage') {
    const n = Number(next());
    const entries = [];
    for (let k = 0; k < n; ++k) entries.push([unhex(next()), unhex(next()), unhex(next())]);
    result.baggage = sortBaggage(entries);
  }
  if (next() === 'codec') result.codec = unhex(next());
  return result;
}

// ---- test data ----------------------------------------------------------------------------

const specTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const specSpanId = '00f067aa0ba902b7';
const specTraceparent = `00-${specTraceId}-${specSpanId}-01`;

const fixedContexts = [
  { name: 'the spec example, sampled', trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: [] } },
  { name: 'not sampled', trace: { traceId: specTraceId, spanId: specSpanId, flags: 0, tracestate: [] } },
  { name: 'the level-2 random flag', trace: { traceId: specTraceId, spanId: specSpanId, flags: 2, tracestate: [] } },
  { name: 'sampled and random', trace: { traceId: specTraceId, spanId: specSpanId, flags: 3, tracestate: [] } },
  { name: 'the spec tracestate', trace: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', flags: 1,
    tracestate: [['rojo', '00f067aa0ba902b7'], ['congo', 't61rcWkgMzE']] } },
  { name: 'multi-tenant keys and spaces inside values', trace: { traceId: specTraceId, spanId: specSpanId, flags: 1,
    tracestate: [['tenant@vendor', 'a b'], ['0tenant@v-*/_', ' lead'], ['k*/_-9', '~!"#$%&()+:;<>?@[\\]^`{|}']] } },
  { name: '32 tracestate members', trace: { traceId: specTraceId, spanId: specSpanId, flags: 1,
    tracestate: Array.from({ length: 32 }, (_, i) => [`k${i}`, `v${i}`]) } },
  { name: 'the spec baggage', baggage: [['userId', 'alice'], ['serverNode', 'DF 28'], ['isProduction', 'false']] },
  { name: 'baggage values that need encoding', baggage: [['text', 'Zoë says "hi", 100%; a=b\\c'], ['emoji', '😀 ✓ €'],
    ['ctl', 'tab\tnew\nline']] },
  { name: 'baggage properties', baggage: [['key1', 'value1', 'property1;property2'], ['key3', 'value3', 'propertyKey=propertyValue']] },
  { name: 'token characters in baggage keys', baggage: [["a.b-c_d~e!f*g'h", 'v'], ['UPPER', 'case']] },
  { name: 'a user variable through a baggage codec', tenant: 'acme corp' },
  { name: 'a codec member among others', trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: [['rojo', '1']] },
    baggage: [['userId', 'alice']], tenant: 'ümlaut;tenant' },
  { name: '64 baggage members', baggage: Array.from({ length: 64 }, (_, i) => [`member${i}`, `value ${i}`]) },
  { name: 'baggage close to 8192 bytes', baggage: Array.from({ length: 8 }, (_, i) => [`m${i}`, 'x'.repeat(1000)]) },
];

// A deterministic generator (mulberry32) for the random contexts.
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomContexts(count, seed) {
  const random = generator(seed);
  const int = (n) => Math.floor(random() * n);
  const pick = (chars) => chars[int(chars.length)];
  const string = (first, rest, min, max) => {
    let s = pick(first);
    const n = min - 1 + int(max - min + 1);
    for (let i = 0; i < n; ++i) s += pick(rest);
    return s;
  };
  const hexId = (n) => {
    let s;
    do { s = Array.from({ length: n }, () => pick('0123456789abcdef')).join(''); } while (/^0+$/.test(s));
    return s;
  };
  const lc = 'abcdefghijklmnopqrstuvwxyz';
  const keychars = lc + '0123456789_-*/';
  let tsValueChars = '';
  for (let c = 0x20; c <= 0x7e; ++c) if (c !== 0x2c && c !== 0x3d) tsValueChars += String.fromCharCode(c);
  const tsNonBlank = tsValueChars.slice(1);
  const tokenChars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*\'';
  const valuePieces = [...'abcXYZ019 -_.!~*\'()"#$%&+,/:;<=>?@[\\]^`{|}\t', 'é', 'ü', '✓', '€', '😀', '中'];
  const propChars = 'ABCabc0123456789-_.';
  const contexts = [];
  for (let n = 0; n < count; ++n) {
    const description = { name: `random #${n} (seed ${seed})` };
    if (random() < 0.8) {
      const tracestate = [];
      const keys = new Set();
      let length = 0;
      const members = random() < 0.1 ? 32 : int(6);
      for (let i = 0; i < members; ++i) {
        const key = random() < 0.3
          ? `${string(lc + '0123456789', keychars, 1, 6)}@${string(lc, keychars, 1, 5)}`
          : string(lc, keychars, 1, 8);
        const value = string(tsValueChars, tsValueChars, 1, 8) + pick(tsNonBlank);
        if (keys.has(key)) continue;
        const size = key.length + value.length + 2;
        if (length + size > 512) break;  // OpenTelemetry drops tracestate members past 512
        keys.add(key);
        length += size;
        tracestate.push([key, value]);
      }
      description.trace = { traceId: hexId(32), spanId: hexId(16), flags: int(4), tracestate };
    }
    if (random() < 0.8) {
      const baggage = [];
      const keys = new Set();
      const members = int(10);
      for (let i = 0; i < members; ++i) {
        const key = string(tokenChars, tokenChars, 1, 10);
        if (keys.has(key) || key === 'tenant' || /^[0-9]+$/.test(key)) continue;
        keys.add(key);
        let value = '';
        const pieces = 1 + int(12);
        for (let k = 0; k < pieces; ++k) value += pick(valuePieces);
        let props = null;
        if (random() < 0.3) {
          props = Array.from({ length: 1 + int(3) }, () =>
            (random() < 0.5 ? string(propChars, propChars, 1, 5) : `${string(propChars, propChars, 1, 5)}=${string(propChars, propChars, 1, 5)}`)).join(';');
        }
        baggage.push([key, value, props]);
      }
      if (baggage.length) description.baggage = baggage;
    }
    if (random() < 0.3) description.tenant = string(tokenChars, tokenChars + ' é', 1, 8);
    contexts.push(description);
  }
  return contexts;
}

// Literal headers both sides extract. `differs` documents a known, deliberate difference: each
// side's result must then be exactly what is written.
const bigTracestate = Array.from({ length: 20 }, (_, i) => `key${i}=${'v'.repeat(30)}`).join(',');
const hundredMembers = Array.from({ length: 100 }, (_, i) => `k${i}=v`).join(',');
const rawCases = [
  { name: 'the spec traceparent', headers: { traceparent: specTraceparent } },
  { name: 'the spec traceparent and tracestate', headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' } },
  { name: 'a higher version with more fields', headers: { traceparent: `cc-${specTraceId}-${specSpanId}-01-what-the-future-will-be-like` } },
  { name: 'a single leading and trailing space', headers: { traceparent: ` ${specTraceparent} ` } },
  { name: 'version 00 with trailing fields is invalid', headers: { traceparent: `${specTraceparent}-extra` } },
  { name: 'version ff is invalid', headers: { traceparent: `ff-${specTraceId}-${specSpanId}-01` } },
  { name: 'upper-case hex is invalid', headers: { traceparent: `00-${specTraceId.toUpperCase()}-${specSpanId}-01` } },
  { name: 'an all-zero trace-id is invalid', headers: { traceparent: `00-${'0'.repeat(32)}-${specSpanId}-01` } },
  { name: 'an all-zero parent-id is invalid', headers: { traceparent: `00-${specTraceId}-${'0'.repeat(16)}-01` } },
  { name: 'a short trace-id is invalid', headers: { traceparent: `00-${specTraceId.slice(1)}-${specSpanId}-01` } },
  { name: 'tracestate without a valid traceparent is ignored', headers: { tracestate: 'foo=1' } },
  { name: 'tracestate OWS and empty members', headers: { traceparent: specTraceparent, tracestate: ', foo=1 \t , \t bar=2,,\tbaz=3\t' } },
  { name: 'the spec baggage with OWS and properties', headers: {
    baggage: 'key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue' } },
  { name: 'the spec baggage with spaces around names and values', headers: { baggage: 'userId =   alice,serverNode = DF%2028, isProduction = false' } },
  { name: 'percent-encoded UTF-8 in both cases of hex', headers: { baggage: 'a=%E2%9C%93,b=%e2%9c%93,c=100%25,d=a%3Db' } },
  { name: 'duplicate baggage keys: the last value wins', headers: { baggage: 'a=1,b=2,a=3' } },
  {
    name: 'an invalid tracestate member', headers: { traceparent: specTraceparent, tracestate: 'foo=1,BAR=2' },
    differs: 'ucm drops the whole tracestate (W3C: invalid as a whole); OpenTelemetry keeps the valid members',
    ucm: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: '' }, baggage: null },
    otel: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: 'foo=1' }, baggage: null },
  },
  {
    name: 'duplicate tracestate keys', headers: { traceparent: specTraceparent, tracestate: 'foo=1,foo=2' },
    differs: 'ucm drops the whole tracestate (W3C test suite); OpenTelemetry keeps the last',
    ucm: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: '' }, baggage: null },
    otel: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: 'foo=2' }, baggage: null },
  },
  {
    name: '33 tracestate members', headers: { traceparent: specTraceparent, tracestate: Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',') },
    differs: 'ucm drops the whole tracestate (W3C test suite); OpenTelemetry keeps the first 32',
    ucm: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: '' }, baggage: null },
    otel: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(',') }, baggage: null },
  },
  {
    name: 'a tracestate longer than 512 characters', headers: { traceparent: specTraceparent, tracestate: bigTracestate },
    differs: 'ucm propagates the whole list (W3C: at least 512); OpenTelemetry drops members past 512 characters',
    ucm: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: bigTracestate }, baggage: null },
    otel: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: bigTracestate.split(',').slice(0, 14).join(',') }, baggage: null },
  },
  {
    name: 'two leading spaces before a traceparent', headers: { traceparent: `  ${specTraceparent}` },
    differs: 'ucm trims any OWS (W3C test suite); OpenTelemetry allows one whitespace character',
    ucm: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 1, tracestate: '' }, baggage: null },
    otel: { trace: null, baggage: null },
  },
  {
    name: 'unknown flags of a higher version', headers: { traceparent: `01-${specTraceId}-${specSpanId}-ff` },
    differs: 'ucm keeps only the flags it knows for a higher version (W3C processing model); OpenTelemetry keeps all',
    ucm: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 3, tracestate: '' }, baggage: null },
    otel: { trace: { traceId: specTraceId, spanId: specSpanId, flags: 255, tracestate: '' }, baggage: null },
  },
  {
    name: 'a malformed baggage member', headers: { baggage: 'a=1,b c=2' },
    differs: 'ucm ignores the whole header (never applied in part); OpenTelemetry keeps what it can read',
    ucm: { trace: null, baggage: null },
    otel: { trace: null, baggage: [['a', '1', null], ['b c', '2', null]] },
  },
  {
    name: 'an empty baggage value', headers: { baggage: 'a=,b=2' },
    differs: 'ucm keeps the empty value (the grammar allows it); OpenTelemetry drops the member',
    ucm: { trace: null, baggage: [['a', '', null], ['b', '2', null]] },
    otel: { trace: null, baggage: [['b', '2', null]] },
  },
  {
    name: 'a percent sign in a baggage key', headers: { baggage: 'k%41=1' },
    differs: 'ucm reads keys as tokens (W3C); OpenTelemetry percent-decodes keys',
    ucm: { trace: null, baggage: [['k%41', '1', null]] },
    otel: { trace: null, baggage: [['kA', '1', null]] },
  },
  {
    name: 'more than 64 baggage members', headers: { baggage: hundredMembers },
    differs: 'ucm keeps the first 64 (the W3C minimum it guarantees peers); OpenTelemetry keeps up to 180',
    ucm: { trace: null, baggage: sortBaggage(hundredMembers.split(',').slice(0, 64).map((m) => [...m.split('='), null])) },
    otel: { trace: null, baggage: sortBaggage(hundredMembers.split(',').map((m) => [...m.split('='), null])) },
  },
];

// ---- run ----------------------------------------------------------------------------------

const requests = [];
const checks = [];

for (const description of [...fixedContexts, ...randomContexts(300, 20241122)]) {
  const headers = otelInject(description);
  checks.push({ kind: 'otel -> ucm', name: description.name, description, headers, answer: requests.length });
  requests.push(extractRequest(headers));
  checks.push({ kind: 'ucm -> otel', name: description.name, description, answer: requests.length });
  requests.push(injectRequest(description));
}
for (const raw of rawCases) {
  checks.push({ kind: 'raw headers', name: raw.name, raw, answer: requests.length });
  requests.push(extractRequest(raw.headers));
}

const run = spawnSync(binary, [], { input: requests.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 28 });
if (run.status !== 0) {
  console.error(`w3c_interop exited with ${run.status} ${run.signal ?? ''}\n${run.stderr}`);
  process.exit(1);
}
const answers = run.stdout.split('\n').filter((l) => l.length > 0);
if (answers.length !== requests.length) {
  console.error(`expected ${requests.length} answers, got ${answers.length}\n${run.stderr}`);
  process.exit(1);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
let passed = 0;
let failed = 0;
const fail = (check, message, details) => {
  ++failed;
  console.log(`FAIL [${check.kind}] ${check.name}: ${message}`);
  for (const [label, value] of Object.entries(details)) console.log(`    ${label}: ${JSON.stringify(value)}`);
};

for (const check of checks) {
  const answer = answers[check.answer];
  if (answer.startsWith('error')) {
    fail(check, `ucm side failed: ${unhex(answer.split(' ')[1] ?? '_')}`, { request: requests[check.answer] });
    continue;
  }
  if (check.kind === 'otel -> ucm') {
    const expected = expectedOf(check.description);
    const ucm = parseExtractAnswer(answer);
    const codec = check.description.tenant ?? null;
    if (!same({ trace: ucm.trace, baggage: ucm.baggage }, expected) || ucm.codec !== codec) {
      fail(check, 'ucm extracted something else than OpenTelemetry injected',
        { headers: check.headers, expected: { ...expected, codec }, ucm });
      continue;
    }
  } else if (check.kind === 'ucm -> otel') {
    const [traceparent, tracestate, baggage] = answer.split(' ').map(unhex);
    const headers = { traceparent, tracestate, baggage };
    const expected = expectedOf(check.description);
    const otel = otelExtract(headers);
    const t = check.description.trace;
    const expectedTraceparent = t ? `00-${t.traceId}-${t.spanId}-0${t.flags.toString(16)}` : null;
    if (!same(otel, expected) || traceparent !== expectedTraceparent) {
      fail(check, 'OpenTelemetry extracted something else than ucm injected', { headers, expected, otel });
      continue;
    }
  } else {
    const ucmResult = parseExtractAnswer(answer);
    const ucm = { trace: ucmResult.trace, baggage: ucmResult.baggage };
    const otel = otelExtract(check.raw.headers);
    if (check.raw.differs) {
      if (!same(ucm, check.raw.ucm) || !same(otel, check.raw.otel)) {
        fail(check, `documented difference no longer holds (${check.raw.differs})`,
          { headers: check.raw.headers, ucm, expectedUcm: check.raw.ucm, otel, expectedOtel: check.raw.otel });
        continue;
      }
    } else if (!same(ucm, otel)) {
      fail(check, 'ucm and OpenTelemetry extract the same headers differently', { headers: check.raw.headers, ucm, otel });
      continue;
    }
  }
  ++passed;
}

const differences = rawCases.filter((c) => c.differs).length;
const versionOf = (name) => {
  try {
    return JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
  } catch {
    return '?';
  }
};
console.log(`OpenTelemetry JS: @opentelemetry/core ${versionOf('@opentelemetry/core')}, ` +
  `@opentelemetry/api ${versionOf('@opentelemetry/api')}; ${checks.length} checks, ` +
  `${differences} of them documented differences`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
