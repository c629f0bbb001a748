// The exact cache seen by the official `openai` SDK: a repeated deterministic request
// is answered by frugal without an upstream call, in either form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.FRUGAL_URL;
const mock = process.env.MOCK_URL;
assert.ok(base && mock, 'FRUGAL_URL and MOCK_URL must be set by tests/e2e/run.sh');
const client = new OpenAI({ baseURL: base, apiKey: 'sk-cache-e2e', maxRetries: 0 });
const upstreamCalls = async () => (await (await fetch(`${mock}/mock/stats`)).json()).chat;

test('a repeated request is a cache hit, plain and streamed, with one upstream call', async () => {
  const messages = [{ role: 'user', content: `cache e2e ${process.pid}` }];
  const before = await upstreamCalls();
  const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, temperature: 0 }).withResponse();
  assert.equal(first.response.headers.get('x-frugal-cache'), 'miss');
  const second = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, temperature: 0 }).withResponse();
  assert.equal(second.response.headers.get('x-frugal-cache'), 'hit');
  assert.deepEqual(second.data, first.data);

  const { data: stream, response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages, temperature: 0, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  assert.equal(response.headers.get('x-frugal-cache'), 'hit');
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) text += chunk.choices[0].delta.content;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, first.data.choices[0].message.content);
  assert.deepEqual(usage, first.data.usage);
  assert.equal(await upstreamCalls(), before + 1);
});

test('no-store and non-deterministic requests bypass the cache', async () => {
  const messages = [{ role: 'user', content: `bypass e2e ${process.pid}` }];
  const r1 = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages, temperature: 0 }, { headers: { 'Cache-Control': 'no-store' } })
    .withResponse();
  assert.equal(r1.response.headers.get('x-frugal-cache'), 'bypass');
  const r2 = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, temperature: 0.9 }).withResponse();
  assert.equal(r2.response.headers.get('x-frugal-cache'), 'bypass');
});
