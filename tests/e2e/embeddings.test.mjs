// POST /v1/embeddings with the official `openai` SDK (`embeddings.create`, which asks
// for base64 and decodes it) and LangChain's `OpenAIEmbeddings` (`configuration:
// {baseURL}`): forwarded to the mock upstream, and computed in-process by the engine
// (run.sh with --engine-model, the llama-2 fixture served as local/llama-2-tiny-random).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { OpenAIEmbeddings } from '@langchain/openai';

const base = process.env.FRUGAL_URL;
assert.ok(base, 'FRUGAL_URL must be set by tests/e2e/run.sh');
const client = new OpenAI({ baseURL: base, apiKey: 'sk-client', maxRetries: 0 });
const engineModel = 'local/llama-2-tiny-random';

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

test('openai embeddings.create through an upstream: vectors, usage, cost headers, cache', async () => {
  const input = ['the cat sat', 'on the mat'];
  const { data: r, response } = await client.embeddings
    .create({ model: 'text-embedding-3-small', input, dimensions: 6 }).withResponse();
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 2);
  for (const [i, d] of r.data.entries()) {
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, 6);
    assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
  }
  assert.equal(r.usage.prompt_tokens, 6);
  assert.equal(response.headers.get('x-frugal-route'), 'embeddings');
  assert.equal(response.headers.get('x-frugal-cache'), 'miss');
  assert.match(response.headers.get('x-frugal-cost-usd') ?? '(missing)', /^[0-9]+\.[0-9]+$/);
  const again = await client.embeddings.create({ model: 'text-embedding-3-small', input, dimensions: 6 }).withResponse();
  assert.equal(again.response.headers.get('x-frugal-cache'), 'hit');
  assert.deepEqual(again.data.data.map((d) => d.embedding), r.data.map((d) => d.embedding));
});

test('openai embeddings.create errors arrive as SDK error classes', async () => {
  await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: '' }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'input');
});

test('LangChain OpenAIEmbeddings: embedDocuments and embedQuery', async () => {
  const embeddings = new OpenAIEmbeddings({
    model: 'text-embedding-3-small', apiKey: 'sk-client', configuration: { baseURL: base }, maxRetries: 0,
  });
  const docs = await embeddings.embedDocuments(['first document', 'second document', 'first document']);
  assert.equal(docs.length, 3);
  assert.ok(docs.every((v) => v.length > 0 && Math.abs(norm(v) - 1) < 1e-5));
  assert.deepEqual(docs[0], docs[2]);
  assert.notDeepEqual(docs[0], docs[1]);
  const q = await embeddings.embedQuery('first document');
  assert.deepEqual(q, docs[0]);
});

test('the local engine computes embeddings in-process: unit vectors, batching changes nothing', async () => {
  const noStore = { headers: { 'cache-control': 'no-store' } };
  const batch = await client.embeddings.create({ model: engineModel, input: ['hello world', 'hello', 'hello world'] }, noStore);
  assert.equal(batch.model, engineModel);
  assert.equal(batch.data.length, 3);
  for (const d of batch.data) assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
  assert.deepEqual(batch.data[0].embedding, batch.data[2].embedding);
  const one = await client.embeddings.create({ model: engineModel, input: 'hello' }, noStore);
  const diff = Math.max(...one.data[0].embedding.map((x, i) => Math.abs(x - batch.data[1].embedding[i])));
  assert.ok(diff < 1e-5, `batched and single differ by ${diff}`);
  assert.ok(batch.usage.prompt_tokens > 3);

  const lc = new OpenAIEmbeddings({ model: engineModel, apiKey: 'sk-client', configuration: { baseURL: base } });
  const q = await lc.embedQuery('hello');
  assert.ok(Math.abs(norm(q) - 1) < 1e-5);
});
