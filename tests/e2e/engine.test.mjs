// The official `openai` SDK against `frugal serve --engine-model <llama-2 fixture>`: the
// in-process engine behind the same API as any upstream. The fixture has random weights,
// so the tests assert behaviour (determinism, shapes, consistency), never wording.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const base = process.env.FRUGAL_URL;
assert.ok(base, 'FRUGAL_URL must be set by tests/e2e/run.sh');
// no-store: every answer below must come from the engine, not frugal's exact cache
// (which would make the determinism checks pass trivially).
const client = new OpenAI({
  baseURL: base, apiKey: 'sk-client', maxRetries: 0, defaultHeaders: { 'cache-control': 'no-store' },
});
const model = 'local/llama-2-tiny-random';
const messages = [{ role: 'user', content: 'Write a short poem about the sea.' }];

test('models list includes the local engine model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model), `got ${ids}`);
});

test('plain completion with usage', async () => {
  const r = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 8 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(r.usage.prompt_tokens > 5);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(r.choices[0].finish_reason, r.usage.completion_tokens === 8 ? 'length' : 'stop');
});

test('greedy streaming with include_usage matches the non-streamed answer', async () => {
  const { data: plain, response } = await client.chat.completions
    .create({ model, messages, temperature: 0, max_tokens: 16 }).withResponse();
  assert.equal(response.headers.get('x-frugal-provider'), 'local');
  assert.equal(response.headers.get('x-frugal-cache'), 'bypass');
  const stream = await client.chat.completions.create({
    model, messages, temperature: 0, max_tokens: 16, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let contentChunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (c?.delta?.content) { text += c.delta.content; contentChunks++; }
    if (c?.finish_reason) finish = c.finish_reason;
  }
  assert.equal(text, plain.choices[0].message.content);
  assert.ok(contentChunks >= 2, `streamed in ${contentChunks} chunks`);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.deepEqual(
    [usage.prompt_tokens, usage.completion_tokens],
    [plain.usage.prompt_tokens, plain.usage.completion_tokens]);
});

test('streams without include_usage carry no usage chunk', async () => {
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 4, stream: true });
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.usage ?? null, null);
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  // An empty stream would pass the loop above vacuously.
  assert.ok(chunks >= 2, `got ${chunks} chunks`);
  assert.ok(finish === 'stop' || finish === 'length', `finish_reason ${finish}`);
});

test('same seed and temperature reproduce the text; another seed does not', async () => {
  const ask = async (seed) => (await client.chat.completions.create({
    model, messages, temperature: 1, seed, max_tokens: 16,
  })).choices[0].message.content;
  const a = await ask(7);
  assert.equal(await ask(7), a);
  assert.notEqual(await ask(8), a);
});

test('logprobs and top_logprobs in OpenAI shape', async () => {
  const r = await client.chat.completions.create({
    model, messages, temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 2,
  });
  const content = r.choices[0].logprobs.content;
  assert.ok(content.length >= 1 && content.length <= r.usage.completion_tokens);
  let bytes = [];
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.ok(Array.isArray(e.bytes));
    bytes = bytes.concat(e.bytes);
    assert.equal(e.top_logprobs.length, 2);
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    assert.equal(e.top_logprobs[0].token, e.token);  // greedy picks the most likely token
    assert.equal(e.top_logprobs[0].logprob, e.logprob);
  }
  // The tokens' bytes spell the answer.
  assert.equal(new TextDecoder().decode(new Uint8Array(bytes)), r.choices[0].message.content);
});

test('a repeated system prompt is served from the prefix cache', async () => {
  const system = 'You are a careful assistant who answers in one sentence. '.repeat(12);
  const ask = (q) => client.chat.completions.create({
    model, temperature: 0, max_tokens: 2,
    messages: [{ role: 'system', content: system }, { role: 'user', content: q }],
  });
  await ask('first');
  const r = await ask('second');
  assert.ok(r.usage.prompt_tokens_details.cached_tokens >= 64, JSON.stringify(r.usage));
  assert.ok(r.usage.prompt_tokens_details.cached_tokens < r.usage.prompt_tokens);
});

test('unsupported features are 400s, not silent drops', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model, messages,
      response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'string', pattern: '^a' } } },
    }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 &&
      e.param === 'response_format.json_schema.schema' && /'pattern' is not supported/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model, messages, n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  await assert.rejects(
    client.chat.completions.create({ model: 'local/not-this-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

test('a client abort mid-stream leaves the server serving', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages, temperature: 0, max_tokens: 2000, stream: true },
    { signal: controller.signal });
  let chunks = 0;
  let finish = null;
  // The SDK ends the iteration quietly when its own signal aborts it.
  try {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      if (chunk.choices[0]?.delta?.content && ++chunks === 3) controller.abort();
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', String(e));
  }
  assert.equal(chunks, 3);
  assert.equal(finish, null);
  // The server goes on answering on new connections.
  const r = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 4 });
  assert.ok(r.usage.completion_tokens >= 1);
  const s = await client.chat.completions.create({ model, messages, max_tokens: 4, stream: true });
  let n = 0;
  for await (const chunk of s) if (chunk.choices[0]?.finish_reason) n++;
  assert.equal(n, 1);
});

const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'integer' } },
  required: ['city', 'days'],
  additionalProperties: false,
};

function checkWeather(args) {
  assert.deepEqual(Object.keys(args), ['city', 'days']);
  assert.equal(typeof args.city, 'string');
  assert.ok([...args.city].length <= 10, args.city);
  assert.ok(Number.isInteger(args.days), String(args.days));
}

test('response_format json_schema: the answer parses and matches the schema', async () => {
  const r = await client.chat.completions.create({
    model, messages, temperature: 0, max_tokens: 40,
    response_format: { type: 'json_schema', json_schema: { name: 'weather', strict: true, schema: weatherSchema } },
  });
  assert.equal(r.choices[0].finish_reason, 'stop');
  checkWeather(JSON.parse(r.choices[0].message.content));
});

test('a named tool comes back as a tool call, streamed as tool_call deltas', async () => {
  const request = {
    model, temperature: 0, max_tokens: 50,
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: weatherSchema } }],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  };
  const r = await client.chat.completions.create(request);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const [call] = r.choices[0].message.tool_calls;
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  checkWeather(JSON.parse(call.function.arguments));

  const stream = await client.chat.completions.create({ ...request, stream: true });
  let name = '', args = '', finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    for (const tc of choice.delta.tool_calls ?? []) {
      if (tc.function?.name) name = tc.function.name;
      args += tc.function?.arguments ?? '';
    }
    finish = choice.finish_reason ?? finish;
  }
  assert.equal(name, 'get_weather');
  assert.equal(args, call.function.arguments);
  assert.equal(finish, 'tool_calls');

  // The conversation goes on with the tool's result.
  const next = await client.chat.completions.create({
    model, temperature: 0, max_tokens: 8,
    messages: [...request.messages, r.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '21C' }],
    tools: request.tools,
  });
  assert.equal(next.choices.length, 1);
});

test('the Anthropic SDK gets a tool_use block from the engine', async () => {
  const anthropic = new Anthropic({ baseURL: process.env.FRUGAL_ROOT, apiKey: 'sk-client', maxRetries: 0 });
  const m = await anthropic.messages.create({
    model, max_tokens: 50, temperature: 0,
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [{ name: 'get_weather', description: 'Current weather', input_schema: weatherSchema }],
    tool_choice: { type: 'tool', name: 'get_weather' },
  });
  assert.equal(m.stop_reason, 'tool_use');
  const block = m.content.find((b) => b.type === 'tool_use');
  assert.ok(block, JSON.stringify(m.content));
  assert.equal(block.name, 'get_weather');
  checkWeather(block.input);
});

// Runs last (node's runner keeps a file's tests in order): the engine's counters show
// whether the answers above were decoded speculatively. tests/e2e/CMakeLists.txt sets
// FRUGAL_E2E_SPECULATIVE=1 for the run that passes --draft-model.
test('the engine drafted and verified tokens exactly when a draft model is loaded', async () => {
  const root = process.env.FRUGAL_ROOT;
  assert.ok(root, 'FRUGAL_ROOT must be set by tests/e2e/run.sh');
  const res = await fetch(`${process.env.FRUGAL_ADMIN}/admin/engines`);  // loopback, no admin_token configured
  assert.equal(res.status, 200);
  const { engines } = await res.json();
  const engine = engines.find((e) => e.model === model);
  assert.ok(engine, `no engine serves ${model}: ${JSON.stringify(engines)}`);
  const stats = JSON.stringify(engine);
  if (process.env.FRUGAL_E2E_SPECULATIVE === '1') {
    assert.equal(typeof engine.draft_model_path, 'string', stats);
    assert.ok(engine.draft_forwards > 0, stats);
    assert.ok(engine.spec_verifies > 0, stats);
    assert.ok(engine.drafted > 0, stats);
    assert.ok(engine.accepted > 0 && engine.accepted <= engine.drafted, stats);
    assert.ok(engine.spec_generated > 0, stats);
  } else {
    assert.equal(engine.draft_model_path, null, stats);
    assert.equal(engine.drafted, 0, stats);
    assert.equal(engine.spec_verifies, 0, stats);
  }
});

test('the Responses API is served by the engine: plain and streamed agree', async () => {
  const input = 'Write a short poem about the sea.';
  const plain = await client.responses.create({ model, input, temperature: 0, max_output_tokens: 8 });
  assert.equal(plain.object, 'response');
  assert.equal(plain.model, model);
  assert.equal(plain.output[0].type, 'message');
  assert.ok(plain.output_text.length > 0);
  assert.ok(plain.usage.input_tokens > 5);
  assert.ok(plain.usage.output_tokens >= 1 && plain.usage.output_tokens <= 8);
  assert.equal(plain.status, plain.usage.output_tokens === 8 ? 'incomplete' : 'completed');
  const stream = client.responses.stream({ model, input, temperature: 0, max_output_tokens: 8 });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, plain.output_text);
  assert.equal(final.usage.output_tokens, plain.usage.output_tokens);
});
