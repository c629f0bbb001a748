// The official `@anthropic-ai/sdk` against frugal (base URL only changed), reaching an
// Anthropic upstream (pass-through) and an OpenAI-compatible one (translation), and the
// `openai` SDK reaching an Anthropic upstream. Both upstreams are the C++ mock, which
// the built-in default config reaches through ANTHROPIC_BASE_URL / OPENAI_BASE_URL
// (model names starting with `claude` go to Anthropic, the rest to OpenAI).
//
// Scripts for the mock travel as a `mock:{...}` prefix of the user text, because a
// translated request may not carry unknown fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const { FRUGAL_URL, FRUGAL_ROOT, MOCK_URL, FRUGAL_LOG } = process.env;
assert.ok(FRUGAL_URL && FRUGAL_ROOT && MOCK_URL && FRUGAL_LOG, 'set by tests/e2e/run.sh');
// ANTHROPIC_BASE_URL-style base: no /v1 (the SDK appends /v1/messages).
const anthropic = new Anthropic({ baseURL: FRUGAL_ROOT, apiKey: 'sk-client', maxRetries: 0 });
const openai = new OpenAI({ baseURL: FRUGAL_URL, apiKey: 'sk-client', maxRetries: 0 });

const weatherTool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } } },
};
const openaiWeatherTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: weatherTool.input_schema },
};

async function upstream() {
  const body = await (await fetch(`${MOCK_URL}/mock/last_request`)).text();
  const headers = await (await fetch(`${MOCK_URL}/mock/last_headers`)).json();
  return { body, json: JSON.parse(body), headers };
}

// The usage frugal handed to the billing layer for request `id` (a debug log line).
async function finishLine(id) {
  for (let i = 0; i < 2000; i++) {  // up to ~20 s: a loaded machine, a sanitizer build
    const line = readFileSync(FRUGAL_LOG, 'utf8').split('\n').find((l) => l.includes(`request ${id}: finish`));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no finish line for ${id} in ${FRUGAL_LOG}`);
}

test('Anthropic SDK → Anthropic upstream: cache_control untouched, usage with cache fields exact', async () => {
  const params = {
    model: 'claude-sonnet-4-6',
    max_tokens: 100,
    system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }],
    messages: [{
      role: 'user',
      content: [{
        type: 'text',
        text: 'mock:{"input_tokens":21,"cache_read_input_tokens":30,"cache_write_5m_tokens":40,"cache_write_1h_tokens":10,"output_tokens":9} Say hello',
        cache_control: { type: 'ephemeral', ttl: '1h' },
      }],
    }],
  };
  const { data: msg, response } = await anthropic.messages
    .create(params, { headers: { 'anthropic-beta': 'extended-cache-ttl-2025-04-11', 'x-request-id': 'e2e-pass-1' } })
    .withResponse();
  assert.equal(msg.type, 'message');
  assert.equal(msg.content[0].text, 'Hello from the mock Anthropic upstream.');
  assert.equal(msg.stop_reason, 'end_turn');
  assert.deepEqual(
    { ...msg.usage, cache_creation: { ...msg.usage.cache_creation } },
    {
      input_tokens: 21, cache_read_input_tokens: 30, cache_creation_input_tokens: 50, output_tokens: 9,
      cache_creation: { ephemeral_5m_input_tokens: 40, ephemeral_1h_input_tokens: 10 },
    });
  assert.equal(response.headers.get('x-frugal-provider'), 'anthropic');

  const up = await upstream();
  // The SDK's body, as it sent it: cache_control blocks byte-identical upstream.
  assert.ok(up.body.includes('"cache_control":{"type":"ephemeral"}'));
  assert.ok(up.body.includes('"cache_control":{"type":"ephemeral","ttl":"1h"}'));
  assert.deepEqual(up.json.system, params.system);
  assert.deepEqual(up.json.messages, params.messages);
  assert.equal(up.headers['x-api-key'], 'sk-ant-upstream');  // the provider's key, never the client's
  assert.equal(up.headers['anthropic-beta'], 'extended-cache-ttl-2025-04-11');
  assert.ok(up.headers['anthropic-version']);
  assert.match(await finishLine('e2e-pass-1'),
    /end=complete dialect=anthropic usage input=101 cached=30 cache_write_5m=40 cache_write_1h=10 output=9 reported=1/);
});

test('Anthropic SDK → Anthropic upstream: streamed tool call, input JSON in pieces, then the round trip', async () => {
  const stream = anthropic.messages.stream({
    model: 'claude-haiku-4-5', max_tokens: 200, tools: [weatherTool],
    messages: [{ role: 'user', content: 'mock:{"cache_read_input_tokens":12,"output_tokens":33} Weather in Paris?' }],
  });
  const pieces = [];
  let text = '';
  stream.on('inputJson', (partial) => pieces.push(partial));
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.ok(pieces.filter((p) => p.length > 0).length >= 3, `input_json_delta pieces: ${pieces.length}`);
  assert.equal(text, 'Calling get_weather.');
  assert.equal(final.stop_reason, 'tool_use');
  const call = final.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(call.input, { city: 'Paris', unit: 'celsius' });
  assert.equal(final.usage.input_tokens, 25);
  assert.equal(final.usage.cache_read_input_tokens, 12);
  assert.equal(final.usage.output_tokens, 33);  // from message_delta

  const answer = await anthropic.messages.create({
    model: 'claude-haiku-4-5', max_tokens: 200, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: final.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18C and sunny' }] },
    ],
  });
  assert.equal(answer.content[0].text, 'Tool result received: 18C and sunny');
});

test('Anthropic SDK → OpenAI-compatible upstream: plain, streamed tools, tool result round trip', async () => {
  const msg = await anthropic.messages.create({
    model: 'gpt-4o-mini', max_tokens: 50, system: 'Be brief.',
    messages: [{ role: 'user', content: 'mock:{"cached_tokens":5} Say hello' }],
  });
  assert.equal(msg.content[0].text, 'Hello from the mock upstream.');
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.usage.input_tokens, 7);  // 12 prompt tokens − 5 cached
  assert.equal(msg.usage.cache_read_input_tokens, 5);
  assert.equal(msg.usage.output_tokens, 7);
  let up = await upstream();
  assert.deepEqual(up.json.messages[0], { role: 'system', content: 'Be brief.' });
  assert.equal(up.json.max_tokens, 50);

  const stream = anthropic.messages.stream({
    model: 'gpt-4o-mini', max_tokens: 50, tools: [weatherTool],
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
  });
  const pieces = [];
  stream.on('inputJson', (partial) => pieces.push(partial));
  const final = await stream.finalMessage();
  assert.ok(pieces.length >= 3, `input_json_delta pieces: ${pieces.length}`);
  assert.equal(final.stop_reason, 'tool_use');
  const call = final.content.find((b) => b.type === 'tool_use');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.input, { city: 'Paris', unit: 'celsius' });
  assert.equal(final.usage.output_tokens, 7);
  up = await upstream();
  assert.equal(up.json.stream_options.include_usage, true);
  assert.equal(up.json.tools[0].function.name, 'get_weather');

  const answer = await anthropic.messages.create({
    model: 'gpt-4o-mini', max_tokens: 50, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: final.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18C' }] },
    ],
  });
  assert.equal(answer.content[0].text, 'Tool result received: 18C');
  up = await upstream();
  assert.deepEqual(up.json.messages.at(-1), { role: 'tool', tool_call_id: call.id, content: '18C' });
});

test('openai SDK → Anthropic upstream: plain with cached tokens, streamed tool call, round trip', async () => {
  const r = await openai.chat.completions.create({
    model: 'claude-sonnet-4-6',
    messages: [{ role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'mock:{"input_tokens":21,"cache_read_input_tokens":30,"cache_write_5m_tokens":40} Say hello' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, 'Hello from the mock Anthropic upstream.');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.prompt_tokens, 91);
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 30);
  assert.equal(r.usage.completion_tokens, 9);
  assert.equal(r.usage.total_tokens, 100);
  const up = await upstream();
  assert.deepEqual(up.json.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(up.headers['x-api-key'], 'sk-ant-upstream');

  const stream = await openai.chat.completions.create({
    model: 'claude-sonnet-4-6', stream: true, stream_options: { include_usage: true }, tools: [openaiWeatherTool],
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
  });
  let args = '';
  let argChunks = 0;
  let name = '', id = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    for (const tc of c.delta?.tool_calls ?? []) {
      if (tc.id) id = tc.id;
      if (tc.function?.name) name = tc.function.name;
      if (tc.function?.arguments) { args += tc.function.arguments; argChunks++; }
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(name, 'get_weather');
  assert.ok(argChunks >= 3, `argument chunks: ${argChunks}`);
  assert.deepEqual(JSON.parse(args), { city: 'Paris', unit: 'celsius' });
  assert.equal(finish, 'tool_calls');
  assert.equal(usage.prompt_tokens, 25);
  assert.equal(usage.completion_tokens, 9);

  const answer = await openai.chat.completions.create({
    model: 'claude-sonnet-4-6', tools: [openaiWeatherTool],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] },
      { role: 'tool', tool_call_id: id, content: '18C' },
    ],
  });
  assert.equal(answer.choices[0].message.content, 'Tool result received: 18C');
});

test('Anthropic SDK errors: NotFoundError, BadRequestError, RateLimitError, OverloadedError', async () => {
  const messages = [{ role: 'user', content: 'Say hello' }];
  await assert.rejects(
    anthropic.messages.create({ model: 'no-such-model', max_tokens: 10, messages }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404 && e.type === 'not_found_error' &&
      /does not exist/.test(e.message));
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-sonnet-4-6', messages }),  // no max_tokens
    (e) => e instanceof Anthropic.BadRequestError && e.status === 400 && e.type === 'invalid_request_error' &&
      /max_tokens/.test(e.message));
  await assert.rejects(  // top_k has no OpenAI equivalent: a clear 400, not a silent drop
    anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 10, top_k: 5, messages }),
    (e) => e instanceof Anthropic.BadRequestError && /top_k/.test(e.message));
  await assert.rejects(
    anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'mock:{"status":429} hi' }] }),
    (e) => e instanceof Anthropic.RateLimitError && e.type === 'rate_limit_error');
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'mock:{"status":529} hi' }] }),
    (e) => e instanceof Anthropic.OverloadedError && e.status === 529 && e.type === 'overloaded_error');
});

test('openai SDK errors from an Anthropic upstream: NotFoundError and a translation BadRequestError', async () => {
  const messages = [{ role: 'user', content: 'mock:{"status":404} hi' }];
  await assert.rejects(
    openai.chat.completions.create({ model: 'claude-sonnet-4-6', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  await assert.rejects(
    openai.chat.completions.create({ model: 'claude-sonnet-4-6', n: 2, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'n');
});

test('a stream the upstream cuts or fails is an SDK error, never a clean end', async () => {
  const cut = await anthropic.messages.create({
    model: 'claude-haiku-4-5', max_tokens: 100, stream: true,
    messages: [{ role: 'user', content: 'mock:{"cut_after":5} Say hello' }],
  });
  const seen = [];
  await assert.rejects(async () => { for await (const ev of cut) seen.push(ev.type); },
    (e) => e instanceof Anthropic.APIError && /interrupted/.test(e.message));
  assert.ok(seen.includes('content_block_delta'));
  assert.ok(!seen.includes('message_stop'));

  await assert.rejects(
    anthropic.messages.stream({
      model: 'claude-haiku-4-5', max_tokens: 100,
      messages: [{ role: 'user', content: 'mock:{"fail_after_events":4,"error_type":"overloaded_error"} hi' }],
    }).finalMessage(),
    (e) => e instanceof Anthropic.APIError && e.type === 'overloaded_error');

  const translated = await anthropic.messages.create({  // OpenAI-compatible upstream cut mid-chunk
    model: 'gpt-4o-mini', max_tokens: 100, stream: true,
    messages: [{ role: 'user', content: 'mock:{"chunks":6,"cut_after":3} hi' }],
  });
  await assert.rejects(async () => { for await (const ev of translated) void ev; },
    (e) => e instanceof Anthropic.APIError && /interrupted/.test(e.message));

  const viaOpenAI = await openai.chat.completions.create({
    model: 'claude-haiku-4-5', stream: true, messages: [{ role: 'user', content: 'mock:{"cut_after":5} hi' }],
  });
  await assert.rejects(async () => { for await (const c of viaOpenAI) void c; },
    (e) => e instanceof OpenAI.APIError && /interrupted/.test(e.message));
});

test('count_tokens reaches the Anthropic upstream; an OpenAI model gets a clear 400', async () => {
  const r = await anthropic.messages.countTokens({
    model: 'claude-sonnet-4-6', system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello please' }],
  });
  assert.equal(r.input_tokens, 5);  // the mock counts words
  const up = await upstream();
  assert.equal(up.json.model, 'claude-sonnet-4-6');
  assert.equal(up.headers['x-api-key'], 'sk-ant-upstream');
  await assert.rejects(
    anthropic.messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof Anthropic.BadRequestError && /not an Anthropic provider/.test(e.message));
});

test('models.list: Anthropic-shaped, with the Anthropic upstream\'s models and the OpenAI ones', async () => {
  const models = [];
  for await (const m of anthropic.models.list()) models.push(m);
  const claude = models.find((m) => m.id === 'claude-mock-1');
  assert.ok(claude, JSON.stringify(models));
  assert.equal(claude.type, 'model');
  assert.equal(claude.display_name, 'Claude Mock One');
  assert.equal(claude.created_at, '2025-02-19T00:00:00Z');
  assert.ok(models.some((m) => m.id === 'mock-model'));  // listed by the OpenAI upstream
  // The openai SDK gets its own shape, Anthropic models included.
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('claude-mock-1') && ids.includes('mock-model'), ids.join(','));
});

test('a client that aborts mid-stream: the usage seen so far is handed off', async () => {
  const stream = anthropic.messages.stream(
    {
      model: 'claude-haiku-4-5', max_tokens: 100,
      messages: [{ role: 'user', content: 'mock:{"chunk_delay_ms":100,"chunk_size":2,"input_tokens":40,"cache_read_input_tokens":7} Say hello' }],
    },
    { headers: { 'x-request-id': 'e2e-abort-1' } });
  let deltas = 0;
  await assert.rejects(async () => {
    for await (const ev of stream) {
      if (ev.type === 'content_block_delta' && ++deltas === 2) stream.abort();
    }
  }, (e) => e instanceof Anthropic.APIUserAbortError);
  // message_start's counters (input incl. cache reads, output 1) reached the billing hand-off.
  assert.match(await finishLine('e2e-abort-1'),
    /end=client_gone dialect=anthropic usage input=47 cached=7 cache_write_5m=0 cache_write_1h=0 output=1 reported=1/);
});
