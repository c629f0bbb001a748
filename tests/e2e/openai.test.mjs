// The official `openai` SDK against frugal (base URL only changed) and the C++ mock upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.FRUGAL_URL;  // e.g. http://127.0.0.1:PORT/v1
assert.ok(base, 'FRUGAL_URL must be set by tests/e2e/run.sh');
const client = new OpenAI({ baseURL: base, apiKey: 'sk-client', maxRetries: 0 });
const messages = [{ role: 'user', content: 'Say hello' }];

test('plain completion', async () => {
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, 'Hello from the mock upstream.');
  assert.equal(r.usage.prompt_tokens, 12);
  assert.equal(r.usage.completion_tokens, 7);
});

test('raw response carries frugal headers', async () => {
  const { response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages }).withResponse();
  assert.match(response.headers.get('x-request-id'), /^frg-/);
  // Present and a whole number of microseconds (a missing header must not read as 0).
  assert.match(response.headers.get('x-frugal-overhead-us') ?? '(missing)', /^[0-9]+$/);
});

test('streamed completion with usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.choices[0]?.delta?.content) text += chunk.choices[0].delta.content;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Hello from the mock upstream.');
  assert.ok(chunks >= 5);
  assert.equal(usage.total_tokens, 19);
});

test('errors arrive as SDK error classes with the right status', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && /does not exist/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o-mini', messages: 'nope' }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'messages');
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o-mini', messages, mock: { status: 429 } }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429);
});

test('a stream cut by the upstream surfaces as an error, not a clean finish', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true, mock: { chunks: 6, cut_after: 3 },
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  }, (e) => e instanceof OpenAI.APIError && /interrupted/.test(e.message));
  assert.ok(text.length > 0 && text !== 'Hello from the mock upstream.');
});

test('models list includes upstream models', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('mock-model'));
});
