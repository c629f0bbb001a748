// OTLP export seen by an independent receiver: a loopback OTLP/HTTP server decodes what
// frugal POSTs with the official generated OTLP protobuf classes from npm
// (@opentelemetry/otlp-transformer's root.js, protobufjs) — never frugal's encoder — and
// the spans and metric points are checked against the ledger (/v1/frugal/ledger) and the
// response headers. A second test stops the receiver mid-load: every client request
// still succeeds and the spans that could not be delivered are counted as dropped.
//
// Self-contained: starts the mock upstream and frugal (with a policy: a cascade and a
// verifier route) itself. Env: FRUGAL_BIN, MOCK_BIN (tests/e2e/CMakeLists.txt).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
// The pinned semantic conventions (docs/observability.md): what gen_ai.* names may be.
import * as semconv from '@opentelemetry/semantic-conventions/incubating';

const require = createRequire(import.meta.url);
let root;
try {
  root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
} catch (e) {
  throw new Error(`@opentelemetry/otlp-transformer is missing from tests/e2e/node_modules: run deploy/install-deps.sh (${e.message})`);
}
const proto = root.opentelemetry.proto;
const TraceRequest = proto.collector.trace.v1.ExportTraceServiceRequest;
const MetricsRequest = proto.collector.metrics.v1.ExportMetricsServiceRequest;

const frugalBin = process.env.FRUGAL_BIN;
const mockBin = process.env.MOCK_BIN;
assert.ok(frugalBin && mockBin, 'FRUGAL_BIN and MOCK_BIN must be set');

const work = mkdtempSync(join(tmpdir(), 'frugal-otlp-e2e-'));
const children = [];
after(async () => {
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => {
    c.once('exit', r);
    c.kill('SIGKILL');
  }))));
  rmSync(work, { recursive: true, force: true });
});

// Stops frugal as an operator would; resolves to its exit code.
function terminate(child) {
  return new Promise((r) => {
    if (child.exitCode !== null) return r(child.exitCode);
    child.once('exit', (code) => r(code));
    child.kill('SIGTERM');
  });
}

// --- helpers --------------------------------------------------------------------------

function start(cmd, args, env, logName) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  const onData = (d) => {
    log += d.toString();
    try {
      writeFileSync(join(work, logName), log);  // for a look after a failure
    } catch {}
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return { child, log: () => log };
}

async function waitFor(what, fn, limitMs = 60_000) {
  const until = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const anyValue = (v) => {
  if (v.stringValue != null && v.stringValue !== '') return v.stringValue;
  if (v.intValue != null) return Number(v.intValue);
  if (v.doubleValue != null) return v.doubleValue;
  if (v.boolValue != null) return v.boolValue;
  if (v.arrayValue) return v.arrayValue.values.map(anyValue);
  return v.stringValue;
};
const attrs = (kvs) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));

// A loopback OTLP/HTTP receiver. `stop()` closes it and every open connection.
async function startReceiver(port = 0) {
  const spans = [];
  const metricExports = [];
  const sockets = new Set();
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests++;
      const body = Buffer.concat(chunks);
      try {
        assert.equal(req.headers['content-type'], 'application/x-protobuf');
        if (req.url === '/v1/traces') {
          const msg = TraceRequest.decode(body);
          for (const rs of msg.resourceSpans) {
            const resource = attrs(rs.resource?.attributes);
            for (const ss of rs.scopeSpans) {
              for (const s of ss.spans) {
                spans.push({
                  resource,
                  scope: ss.scope?.name,
                  schemaUrl: ss.schemaUrl,
                  traceId: hex(s.traceId),
                  spanId: hex(s.spanId),
                  parentSpanId: s.parentSpanId?.length ? hex(s.parentSpanId) : '',
                  name: s.name,
                  kind: s.kind,
                  start: BigInt(s.startTimeUnixNano.toString()),
                  end: BigInt(s.endTimeUnixNano.toString()),
                  attributes: attrs(s.attributes),
                  events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
                  status: s.status ? { code: s.status.code, message: s.status.message } : { code: 0 },
                  tenant: req.headers['x-tenant'],
                });
              }
            }
          }
        } else if (req.url === '/v1/metrics') {
          const msg = MetricsRequest.decode(body);
          const metrics = {};
          for (const rm of msg.resourceMetrics)
            for (const sm of rm.scopeMetrics)
              for (const m of sm.metrics) metrics[m.name] = m;
          metricExports.push(metrics);
        } else {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (e) {
        console.error('receiver: cannot decode', req.url, e);
        res.writeHead(400).end();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: server.address().port,
    spans,
    metricExports,
    requests: () => requests,
    stop: () =>
      new Promise((r) => {
        server.close(r);
        for (const s of sockets) s.destroy();
      }),
  };
}

async function startMock() {
  const m = start(mockBin, ['--port', '0', '--threads', '2'], {}, 'mock.log');
  const port = await waitFor('mock port', () => m.log().match(/PORT=(\d+)/)?.[1]);
  return `http://127.0.0.1:${port}`;
}

const policy = `request_types:
  - name: classify
    match: { header: { x-frugal-request-type: classify } }
  - name: verify
    match: { header: { x-frugal-request-type: verify } }
  - name: chat
routes:
  classify:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { mean_logprob: { min: -0.5 } }
      - model: tier-large
  verify:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept:
          verifier:
            model: verifier-mini
            prompt: "Question: {question}\\nAnswer: {answer}\\nIs the answer correct? Reply yes or no."
            min_p_yes: 0.8
      - model: tier-large
prices:
  tier-small:    { input: 0.10, output: 0.40 }
  tier-large:    { input: 10.00, output: 30.00 }
  verifier-mini: { input: 0.20, output: 0.80 }
  plain-model:   { input: 1.00, output: 2.00 }
`;

async function startFrugal(name, mockUrl, otlpPort, otlp) {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  require('node:fs').mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'policy.yaml'), policy);
  writeFileSync(
    join(dir, 'frugal.yaml'),
    `data_dir: ${join(dir, 'data')}
policy: policy.yaml
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: ${mockUrl}/v1
    retry: { max_attempts: 1 }
  anth:
    kind: anthropic
    base_url: ${mockUrl}
    api_key: sk-ant-otlp
    retry: { max_attempts: 1 }
passthrough:
  - { prefix: "claude", provider: anth }
  - { prefix: "", provider: mock }
telemetry:
  otlp:
${otlp.map((l) => '    ' + l).join('\n')}
`,
  );
  const f = start(frugalBin, ['serve', '--config', join(dir, 'frugal.yaml'), '--log-level', 'debug'],
    { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`, OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=e2e%20tenant',
      OTEL_SERVICE_NAME: 'frugal-e2e' }, `${name}.log`);
  const port = await waitFor('frugal port', () => f.log().match(/listening on 127\.0\.0\.1:(\d+)/)?.[1]);
  return { url: `http://127.0.0.1:${port}`, log: f.log, child: f.child };
}

async function chat(url, body, headers = {}) {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-otlp-e2e', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Which colour is the sky?' }], ...body }),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

async function ledgerRows(url) {
  const r = await fetch(`${url}/v1/frugal/ledger?limit=1000`, { headers: { authorization: 'Bearer sk-otlp-e2e' } });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).rows;
}

// A ledger amount in USD: `cost_usd`-style decimal strings when the ledger has them,
// else integer micro-dollars.
const usdOf = (row, field) => (typeof row[`${field}_usd`] === 'string' ? Number(row[`${field}_usd`]) : row[field] / 1e6);
const close = (a, b) => Math.abs(a - b) < 1e-12;

function sumPoints(metric, filter = () => true) {
  const points = metric?.sum?.dataPoints ?? [];
  return points.filter((p) => filter(attrs(p.attributes))).reduce((s, p) => s + (p.asDouble ?? Number(p.asInt ?? 0)), 0);
}

// --- the tests ------------------------------------------------------------------------

test('spans and metrics decoded by the official OTLP classes agree with the ledger', async () => {
  const receiver = await startReceiver();
  const mockUrl = await startMock();
  const gw = await startFrugal('agree', mockUrl, receiver.port,
    ['flush_interval: 50ms', 'export_interval: 300ms', 'headers: { x-extra: from-file }']);
  const pid = process.pid;

  // 1. A plain request continuing the caller's trace; its upstream request carries a
  //    traceparent naming the tier's span.
  const callerTrace = '0af7651916cd43dd8448eb211c80319c';
  const callerSpan = 'b7ad6b7169203331';
  const plain = await chat(gw.url, { model: 'plain-model', temperature: 0, messages: [{ role: 'user', content: `plain ${pid}` }] },
    { 'x-request-id': `plain-${pid}`, traceparent: `00-${callerTrace}-${callerSpan}-01` });
  assert.equal(plain.status, 200, plain.text);
  const upstreamHeaders = await (await fetch(`${mockUrl}/mock/last_headers`)).json();
  // 2. The same again: a cache hit.
  const hit = await chat(gw.url, { model: 'plain-model', temperature: 0, messages: [{ role: 'user', content: `plain ${pid}` }] },
    { 'x-request-id': `hit-${pid}` });
  assert.equal(hit.headers.get('x-frugal-cache'), 'hit');
  // 3. An escalation: tier-small unsure (low log-probs), tier-large answers, streamed.
  const esc = await chat(gw.url, {
    model: 'auto', stream: true, stream_options: { include_usage: true },
    mock: { models: { 'tier-small': { logprobs: [-2, -2], usage: { prompt: 100, completion: 20 } },
                      'tier-large': { usage: { prompt: 100, completion: 30 } } } },
  }, { 'x-request-id': `esc-${pid}`, 'x-frugal-request-type': 'classify' });
  assert.equal(esc.status, 200, esc.text);
  // 4. A verifier says no: tier-small rejected by P(yes), tier-large answers.
  assert.equal((await fetch(`${mockUrl}/mock/models`, { method: 'POST', body: JSON.stringify({
    'verifier-mini': { tokens: [{ t: 'No', lp: -0.05, top: [['No', -0.05], ['Yes', -3.0]] }], usage: { prompt: 50, completion: 1 } },
  }) })).status, 200);
  const ver = await chat(gw.url, { model: 'auto' }, { 'x-request-id': `ver-${pid}`, 'x-frugal-request-type': 'verify' });
  assert.equal(ver.status, 200, ver.text);
  // 5. An upstream error, relayed.
  const err = await chat(gw.url, { model: 'plain-model', mock: { status: 503 } }, { 'x-request-id': `err-${pid}` });
  assert.equal(err.status, 503);
  // 6. The Anthropic Messages API to an Anthropic-kind provider: traceparent there too.
  const msg = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-otlp-e2e', 'anthropic-version': '2023-06-01',
               'x-request-id': `anth-${pid}` },
    body: JSON.stringify({ model: 'claude-otlp', max_tokens: 16, messages: [{ role: 'user', content: `anth ${pid}` }] }),
  });
  assert.equal(msg.status, 200, await msg.text());
  const anthHeaders = await (await fetch(`${mockUrl}/mock/last_headers`)).json();
  // 7. A request refused before any upstream (a bad header): a span, but no ledger row.
  const refused = await chat(gw.url, { model: 'plain-model' }, { 'x-request-id': `refused-${pid}`, 'x-frugal-cache-ttl': 'soon' });
  assert.equal(refused.status, 400, refused.text);
  const ids = [`plain-${pid}`, `hit-${pid}`, `esc-${pid}`, `ver-${pid}`, `err-${pid}`, `anth-${pid}`];
  const requested = { plain: 'plain-model', hit: 'plain-model', err: 'plain-model', esc: 'auto', ver: 'auto', anth: 'claude-otlp' };

  const rows = await ledgerRows(gw.url);
  const rowOf = (id) => rows.find((r) => r.id === id);
  // Every request's spans, once all arrived: a root, its cache lookup, one per tier row.
  const expected = (id) => 1 + (rowOf(id).cache === 'none' ? 0 : 1) + rowOf(id).tiers.length;
  const spansOf = (id) => {
    const rootSpan = receiver.spans.find((s) => s.attributes['frugal.request_id'] === id);
    return rootSpan ? receiver.spans.filter((s) => s.traceId === rootSpan.traceId &&
      (s.spanId === rootSpan.spanId || s.parentSpanId === rootSpan.spanId)) : [];
  };
  await waitFor('every span', () => ids.every((id) => rowOf(id) && spansOf(id).length === expected(id)), 30_000);

  for (const id of ids) {
    const row = rowOf(id);
    const all = spansOf(id);
    const rootSpan = all.find((s) => s.attributes['frugal.request_id'] === id);
    const children = all.filter((s) => s !== rootSpan);
    assert.equal(rootSpan.kind, 2, 'SPAN_KIND_SERVER');
    assert.equal(rootSpan.scope, 'frugal');
    assert.equal(rootSpan.resource['service.name'], 'frugal-e2e');
    assert.equal(rootSpan.tenant, 'e2e tenant', 'OTEL_EXPORTER_OTLP_HEADERS, percent-decoded');
    assert.match(rootSpan.schemaUrl, /^https:\/\/opentelemetry\.io\/schemas\/1\.\d+\.\d+$/);
    const a = rootSpan.attributes;
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(rootSpan.name, `chat ${requested[id.split('-')[0]]}`);
    assert.equal(a['frugal.request_type'], row.type);
    assert.equal(a['frugal.route'], row.route);
    assert.equal(a['frugal.cache'], row.cache);
    assert.equal(a['http.response.status_code'], row.status);
    assert.ok(close(a['frugal.cost_usd'], usdOf(row, 'cost')), `${id} cost ${a['frugal.cost_usd']} vs ${usdOf(row, 'cost')}`);
    assert.ok(close(a['frugal.baseline_usd'], usdOf(row, 'baseline')), `${id} baseline`);
    assert.ok(close(a['frugal.savings_usd'], usdOf(row, 'savings')), `${id} savings`);
    assert.ok(rootSpan.end >= rootSpan.start);
    // Children: the cache lookup, then the tiers in the ledger's order.
    const tierSpans = children.filter((s) => s.name !== 'cache lookup').sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    assert.equal(tierSpans.length, row.tiers.length, `${id}: one span per ledger tier`);
    row.tiers.forEach((t, i) => {
      const s = tierSpans[i];
      assert.equal(s.kind, 3, 'SPAN_KIND_CLIENT');
      assert.equal(s.attributes['frugal.tier.model'], t.model);
      assert.equal(s.attributes['frugal.tier.status'], t.status);
      assert.ok(close(s.attributes['frugal.cost_usd'], usdOf(t, 'cost')), `${id} tier ${i} cost`);
      if (t.usage?.reported) {
        assert.equal(s.attributes['gen_ai.usage.input_tokens'], t.usage.in);
        assert.equal(s.attributes['gen_ai.usage.output_tokens'], t.usage.out);
        assert.equal(s.attributes['gen_ai.usage.cache_read.input_tokens'], t.usage.cached);
        assert.equal(s.attributes['gen_ai.usage.cache_write.input_tokens'], t.usage.cw5m + t.usage.cw1h);
      }
      assert.ok(s.start >= rootSpan.start && s.end <= rootSpan.end, `${id} tier ${i} within the request`);
      assert.equal(s.name, `${t.status === 'verifier' ? 'verify' : 'chat'} ${t.model}`);
    });
    if (row.cache !== 'none') assert.equal(children.filter((s) => s.name === 'cache lookup').length, 1);
  }

  // The caller's trace continued, and handed on to the upstream naming the tier span.
  const plainRoot = spansOf(`plain-${pid}`).find((s) => s.attributes['frugal.request_id'] === `plain-${pid}`);
  assert.equal(plainRoot.traceId, callerTrace);
  assert.equal(plainRoot.parentSpanId, callerSpan);
  const plainTier = spansOf(`plain-${pid}`).find((s) => s.name === 'chat plain-model' && s.kind === 3);
  assert.equal(upstreamHeaders.traceparent, `00-${callerTrace}-${plainTier.spanId}-01`);
  assert.equal(plainRoot.attributes['gen_ai.provider.name'], 'mock');
  assert.equal(plainRoot.attributes['gen_ai.response.model'], 'plain-model');
  assert.equal(plainRoot.attributes['gen_ai.usage.input_tokens'], 12);  // the mock's default usage
  assert.equal(plainRoot.attributes['gen_ai.usage.output_tokens'], 7);
  assert.equal(plainRoot.attributes['gen_ai.usage.cache_read.input_tokens'], 0);
  assert.equal(plainRoot.attributes['gen_ai.usage.cache_write.input_tokens'], 0);
  assert.equal(plainRoot.attributes['frugal.tier'], 1);
  assert.deepEqual(plainRoot.attributes['gen_ai.response.finish_reasons'], ['stop']);
  assert.equal(Number(plain.headers.get('x-frugal-cost-usd')), plainRoot.attributes['frugal.cost_usd']);
  // A hit: no tier spans, no cost.
  const hitRoot = spansOf(`hit-${pid}`).find((s) => s.attributes['frugal.request_id'] === `hit-${pid}`);
  assert.equal(hitRoot.attributes['frugal.cache'], 'hit');
  assert.equal(hitRoot.attributes['frugal.cost_usd'], 0);
  assert.equal(hitRoot.traceId === callerTrace, false, 'a request without traceparent starts its own trace');
  // The escalation and the verifier: rejected tier 1, accepted tier 2, the verify span.
  const escRoot = spansOf(`esc-${pid}`).find((s) => s.parentSpanId === '');
  assert.equal(escRoot.attributes['frugal.tier'], 2);
  assert.deepEqual(escRoot.attributes['gen_ai.response.finish_reasons'], ['stop'], 'read from the relayed stream');
  const refusedRoot = await waitFor('the refused request\'s span', () => spansOf(`refused-${pid}`).find((s) => s.parentSpanId === ''), 30_000);
  assert.equal(refusedRoot.attributes['error.type'], '400');
  assert.equal(refusedRoot.attributes['http.response.status_code'], 400);
  assert.equal(spansOf(`refused-${pid}`).length, 1, 'no cache or tier spans');
  const verSpans = spansOf(`ver-${pid}`);
  const verify = verSpans.find((s) => s.name === 'verify verifier-mini');
  assert.ok(verify, 'a verifier span');
  assert.equal(verify.attributes['frugal.verifier'], true);
  assert.ok(verify.attributes['frugal.score'] < 0.8);
  const anthSpans = spansOf(`anth-${pid}`);
  const anthTier = anthSpans.find((s) => s.kind === 3);
  assert.equal(anthTier.attributes['gen_ai.provider.name'], 'anth');
  assert.equal(anthSpans.find((s) => s.kind === 2).attributes['frugal.dialect'], 'anthropic');
  assert.equal(anthHeaders.traceparent, `00-${anthTier.traceId}-${anthTier.spanId}-01`);
  // The relayed error: error.type on the request, an error status.
  const errRoot = spansOf(`err-${pid}`).find((s) => s.parentSpanId === '');
  assert.equal(errRoot.attributes['error.type'], '503');
  assert.equal(errRoot.status.code, 2, 'STATUS_CODE_ERROR');
  const errTier = spansOf(`err-${pid}`).find((s) => s.name === 'chat plain-model' && s.kind === 3);
  assert.equal(errTier.attributes['error.type'], '503');
  assert.equal(errTier.events[0].name, 'upstream attempt');
  assert.equal(errTier.events[0].attributes['http.response.status_code'], 503);

  // Every gen_ai.* name frugal sends is one of the pinned conventions' (1.40.0), but for the
  // two the docs name as extensions.
  const known = new Set(Object.entries(semconv).filter(([k]) => k.startsWith('ATTR_GEN_AI_') || k.startsWith('METRIC_GEN_AI_')).map(([, v]) => v));
  const extensions = new Set(['gen_ai.usage.cache_write.input_tokens', 'gen_ai.usage.reasoning.output_tokens']);
  const sent = new Set(receiver.spans.flatMap((s) => Object.keys(s.attributes)).filter((k) => k.startsWith('gen_ai.')));
  assert.ok(sent.has('gen_ai.response.finish_reasons') && sent.has('gen_ai.usage.cache_read.input_tokens'));
  for (const name of sent) assert.ok(known.has(name) || extensions.has(name), `${name} is not in semantic conventions 1.40.0`);

  // Metrics: cumulative points that add up to the ledger.
  const totalCost = ids.reduce((s, id) => s + usdOf(rowOf(id), 'cost'), 0);
  const totalBaseline = ids.reduce((s, id) => s + usdOf(rowOf(id), 'baseline'), 0);
  const tokens = (type) => ids.reduce((s, id) => s + rowOf(id).tiers.reduce((t, tier) => {
    const u = tier.usage ?? {};
    return t + (type === 'input' ? u.in : u.out);
  }, 0), 0);
  const m = await waitFor('a metrics export with every request', () => {
    const last = receiver.metricExports.at(-1);
    return last && sumPoints(last['frugal.requests']) === ids.length + 1 ? last : null;  // + the refused one
  }, 30_000);
  assert.ok(Math.abs(sumPoints(m['frugal.cost.usd']) - totalCost) < 1e-9, `cost ${sumPoints(m['frugal.cost.usd'])} vs ${totalCost}`);
  assert.ok(Math.abs(sumPoints(m['frugal.baseline.usd']) - totalBaseline) < 1e-9);
  assert.ok(Math.abs(sumPoints(m['frugal.savings.usd']) - (totalBaseline - totalCost)) < 1e-9);
  assert.equal(m['frugal.cost.usd'].sum.isMonotonic, true);
  assert.equal(m['frugal.cost.usd'].sum.aggregationTemporality, 2, 'cumulative');
  assert.equal(sumPoints(m['frugal.requests'], (a) => a['http.response.status_code'] === 503), 1);
  assert.equal(sumPoints(m['frugal.requests'], (a) => a['http.response.status_code'] === 400), 1, 'the refused request');
  assert.equal(sumPoints(m['frugal.requests'], (a) => a['frugal.cache'] === 'hit'), 1);
  const histSum = (name, filter) => (m[name]?.histogram?.dataPoints ?? [])
    .filter((p) => filter(attrs(p.attributes))).reduce((s, p) => s + p.sum, 0);
  assert.equal(histSum('gen_ai.client.token.usage', (a) => a['gen_ai.token.type'] === 'input'), tokens('input'));
  assert.equal(histSum('gen_ai.client.token.usage', (a) => a['gen_ai.token.type'] === 'output'), tokens('output'));
  const durations = m['gen_ai.client.operation.duration'].histogram.dataPoints;
  assert.equal(durations.reduce((s, p) => s + Number(p.count), 0), ids.length + 1);
  for (const p of durations) {
    assert.equal(p.bucketCounts.length, p.explicitBounds.length + 1);
    assert.equal(p.bucketCounts.reduce((s, c) => s + Number(c), 0), Number(p.count));
  }
  assert.equal(sumPoints(m['frugal.otlp.spans.dropped']), 0);
  for (const name of Object.keys(m).filter((n) => n.startsWith('gen_ai.'))) assert.ok(known.has(name), `metric ${name} is not in semantic conventions 1.40.0`);
  assert.ok(sumPoints(m['frugal.otlp.spans.exported']) >= ids.reduce((s, id) => s + expected(id), 1));
  // A graceful stop exports the metrics a last time and exits 0.
  const exportsBefore = receiver.metricExports.length;
  assert.equal(await terminate(gw.child), 0);
  assert.ok(receiver.metricExports.length > exportsBefore, 'a last metrics export at shutdown');
  assert.equal(sumPoints(receiver.metricExports.at(-1)['frugal.requests']), ids.length + 1);
  await receiver.stop();
});

test('a receiver that goes away mid-load fails no client request, the lost spans are counted', async () => {
  let receiver = await startReceiver();
  const port = receiver.port;
  const mockUrl = await startMock();
  const gw = await startFrugal('down', mockUrl, port, [
    'flush_interval: 20ms', 'export_interval: 200ms', 'queue_size: 8', 'batch_size: 16', 'timeout: 1s',
    'max_retry_time: 500ms']);
  const total = 240;
  let done = 0, failed = 0, stopped = null;
  const received = [];
  const one = async (i) => {
    const r = await chat(gw.url, { model: 'plain-model', temperature: 0.7, messages: [{ role: 'user', content: `load ${i}` }] });
    if (r.status !== 200) failed++;
    done++;
    if (done === total / 4 && !stopped) {
      received.push(...receiver.spans);
      stopped = receiver.stop();  // the collector goes away: connections cut, port closed
    }
  };
  for (let i = 0; i < total; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => one(i + k)));
  await stopped;
  assert.equal(failed, 0, 'no client request may fail because the collector is gone');
  assert.equal(done, total);
  await waitFor('the export failure logged', () => /otlp: exporting (spans|metrics) to .* failed/.test(gw.log()), 30_000);

  // The collector comes back on the same port: the next metrics export reports the drops.
  receiver = await startReceiver(port);
  const perRequest = 3;  // the request, its cache lookup (bypass), its one tier
  const m = await waitFor('every span accounted for', () => {
    const last = receiver.metricExports.at(-1);
    if (!last) return null;
    const exported = sumPoints(last['frugal.otlp.spans.exported']);
    const dropped = sumPoints(last['frugal.otlp.spans.dropped']);
    return exported + dropped === total * perRequest ? last : null;
  }, 60_000);
  const dropped = sumPoints(m['frugal.otlp.spans.dropped']);
  const exported = sumPoints(m['frugal.otlp.spans.exported']);
  assert.ok(dropped > 0, 'spans were dropped while the collector was away');
  assert.ok(received.length + receiver.spans.length >= exported, 'what frugal counts as exported did arrive');
  assert.equal(sumPoints(m['frugal.requests']), total, 'the metrics saw every request all the same');
  const rows = await ledgerRows(gw.url);
  assert.equal(rows.filter((r) => r.status === 200).length, total);
  assert.equal(await terminate(gw.child), 0);
  await receiver.stop();
});
