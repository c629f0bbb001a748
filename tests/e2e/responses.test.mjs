// The OpenAI Responses API (/v1/responses) through frugal with the clients that call it:
// the official `openai` SDK's `responses.create` / `responses.stream`, and the Vercel AI
// SDK's default OpenAI provider (`ai` + `@ai-sdk/openai`: `openai(model)` is a Responses
// model). Upstream: the C++ mock, OpenAI-compatible for gpt-* and Anthropic for claude-*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { generateText, streamText, tool, jsonSchema, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const base = process.env.FRUGAL_URL;  // e.g. http://127.0.0.1:PORT/v1
assert.ok(base, 'FRUGAL_URL must be set by tests/e2e/run.sh');
const client = new OpenAI({ baseURL: base, apiKey: 'sk-client', maxRetries: 0 });
const hello = 'Hello from the mock upstream.';
const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

test('openai SDK: responses.create, plain', async () => {
  const r = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hello', instructions: 'Be brief' });
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.match(r.id, /^resp_/);
  assert.equal(r.output_text, hello);
  assert.equal(r.usage.input_tokens, 12);
  assert.equal(r.usage.output_tokens, 7);
  assert.equal(r.usage.input_tokens_details.cached_tokens, 0);
});

test('openai SDK: responses.create with stream: true yields the event sequence', async () => {
  const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hello', stream: true });
  const types = [];
  let text = '';
  let completed = null;
  let seq = -1;
  for await (const event of stream) {
    types.push(event.type);
    assert.equal(event.sequence_number, seq + 1);
    seq = event.sequence_number;
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.ok(types.includes('response.output_text.done'));
  assert.equal(types.at(-1), 'response.completed');
  assert.equal(text, hello);
  assert.equal(completed.usage.total_tokens, 19);
});

test('openai SDK: responses.stream accumulates a consistent final response', async () => {
  const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'Say hello' });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, hello);
  assert.equal(final.output[0].content[0].text, hello);
});

test('openai SDK: a function tool round trip', async () => {
  const input = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await client.responses.create({ model: 'gpt-4o-mini', input, tools: [weatherTool] });
  const call = first.output.find((item) => item.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris', unit: 'celsius' });
  const second = await client.responses.create({
    model: 'gpt-4o-mini',
    tools: [weatherTool],
    input: [...input, ...first.output, { type: 'function_call_output', call_id: call.call_id, output: '18C and sunny' }],
  });
  assert.equal(second.output_text, 'Tool result received: 18C and sunny');
});

test('openai SDK: a Claude model behind /v1/responses', async () => {
  const r = await client.responses.create({ model: 'claude-sonnet-4-5', input: 'Say hello', max_output_tokens: 64 });
  assert.equal(r.output_text, 'Hello from the mock Anthropic upstream.');
  assert.equal(r.usage.output_tokens, 9);
});

test('openai SDK: stored-response features are a 400 with the parameter named', async () => {
  await assert.rejects(
    client.responses.create({ model: 'gpt-4o-mini', input: 'x', previous_response_id: 'resp_123' }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'previous_response_id');
  await assert.rejects(
    client.responses.create({ model: 'gpt-4o-mini', input: [{ type: 'item_reference', id: 'msg_1' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input[0].type');
});

// The Vercel AI SDK's default OpenAI provider calls /v1/responses.
const openai = createOpenAI({ baseURL: base, apiKey: 'sk-client' });

test('Vercel AI SDK: generateText', async () => {
  const { text, usage, finishReason } = await generateText({ model: openai('gpt-4o-mini'), prompt: 'Say hello' });
  assert.equal(text, hello);
  assert.equal(finishReason, 'stop');
  assert.equal(usage.inputTokens, 12);
  assert.equal(usage.outputTokens, 7);
});

test('Vercel AI SDK: streamText', async () => {
  const result = streamText({ model: openai('gpt-4o-mini'), prompt: 'Say hello', onError: ({ error }) => { throw error; } });
  let text = '';
  for await (const delta of result.textStream) text += delta;
  assert.equal(text, hello);
  assert.equal((await result.usage).outputTokens, 7);
  assert.equal(await result.finishReason, 'stop');
});

test('Vercel AI SDK: a tool call and its result in a two-step generateText', async () => {
  const calls = [];
  const { text, steps } = await generateText({
    model: openai('gpt-4o-mini'),
    prompt: 'Weather in Paris?',
    tools: {
      get_weather: tool({
        description: 'Current weather in a city',
        inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
        execute: async ({ city }) => { calls.push(city); return `18C in ${city}`; },
      }),
    },
    stopWhen: stepCountIs(2),
  });
  assert.deepEqual(calls, ['Paris']);
  assert.equal(steps.length, 2);
  assert.equal(steps[0].finishReason, 'tool-calls');
  assert.equal(text, 'Tool result received: 18C in Paris');
});

test('Vercel AI SDK: a streamed tool call', async () => {
  const result = streamText({
    model: openai('gpt-4o-mini'),
    prompt: 'Weather in Paris?',
    tools: { get_weather: tool({ inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } } }) }) },
    onError: ({ error }) => { throw error; },
  });
  const toolCalls = await result.toolCalls;
  assert.equal(toolCalls.length, 1);
  assert.equal(toolCalls[0].toolName, 'get_weather');
  assert.deepEqual(toolCalls[0].input, { city: 'Paris', unit: 'celsius' });
  assert.equal(await result.finishReason, 'tool-calls');
});

test('Vercel AI SDK: a multi-turn conversation with store: false (frugal keeps no responses)', async () => {
  const first = await generateText({ model: openai('gpt-4o-mini'), prompt: 'Say hello' });
  const messages = [{ role: 'user', content: 'Say hello' }, ...first.response.messages, { role: 'user', content: 'Again' }];
  // By default the SDK refers to its earlier answer by id (item_reference): a clear 400.
  await assert.rejects(generateText({ model: openai('gpt-4o-mini'), messages }),
    (e) => e.statusCode === 400 && /does not keep responses/.test(e.responseBody));
  const second = await generateText({
    model: openai('gpt-4o-mini'), messages, providerOptions: { openai: { store: false } },
  });
  assert.equal(second.text, hello);
});
