// Structured outputs across dialects: OpenAI-shaped `response_format` requests for a
// Claude model, which frugal sends to the Anthropic upstream (the mock) as a forced tool
// and answers in OpenAI shape. Clients: LangChain's ChatOpenAI.withStructuredOutput (its
// default method, json_schema, with a zod schema) and the `openai` SDK, plain and streamed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';

const base = process.env.FRUGAL_URL;
assert.ok(base, 'FRUGAL_URL must be set by tests/e2e/run.sh');
const model = 'claude-sonnet-4-5';
// The mock's Anthropic side answers a forced tool with {"city":"Paris","unit":"celsius"}.
const Weather = z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) });

test('LangChain withStructuredOutput (default method) on ChatOpenAI with a Claude model', async () => {
  const llm = new ChatOpenAI({ model, apiKey: 'sk-client', configuration: { baseURL: base }, maxRetries: 0 });
  const structured = llm.withStructuredOutput(Weather, { name: 'weather', includeRaw: true });
  const out = await structured.invoke('What is the weather in Paris?');
  assert.deepEqual(out.parsed, { city: 'Paris', unit: 'celsius' });
  // The default method sent response_format json_schema (not a tool call) and got content back.
  assert.equal(out.raw.content, '{"city":"Paris","unit":"celsius"}');
  assert.equal(out.raw.tool_calls?.length ?? 0, 0);
});

test('openai SDK: json_schema to a Claude model, plain and streamed, json_object too', async () => {
  const client = new OpenAI({ baseURL: base, apiKey: 'sk-client', maxRetries: 0 });
  const response_format = {
    type: 'json_schema',
    json_schema: {
      name: 'weather', strict: true,
      schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } },
        required: ['city', 'unit'], additionalProperties: false },
    },
  };
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const r = await client.chat.completions.create({ model, messages, response_format });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { city: 'Paris', unit: 'celsius' });

  const stream = await client.chat.completions.create({ model, messages, response_format, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(chunk.choices[0]?.delta?.tool_calls, undefined);
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'stop');
  assert.deepEqual(JSON.parse(text), { city: 'Paris', unit: 'celsius' });

  const o = await client.chat.completions.create({ model, messages, response_format: { type: 'json_object' } });
  assert.equal(typeof JSON.parse(o.choices[0].message.content), 'object');
});
