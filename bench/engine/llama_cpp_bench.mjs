// llama.cpp's figures on the same GGUF file, for engine_bench to print beside its own:
// node-llama-cpp (its prebuilt CPU build picks the kernels for this CPU) is a reference
// only, never a dependency of frugal. Prints one JSON object per line:
//   {"prefill": tok/s, "decode1": tok/s, "decodeN": aggregate tok/s, "n_seq": N}
// Usage: node llama_cpp_bench.mjs MODEL.gguf THREADS PROMPT_TOKENS DECODE_TOKENS N_SEQ
// node-llama-cpp is looked up from NODE_LLAMA_CPP_DIR (a folder holding node_modules),
// else from the usual resolution; exit 3 when it is not installed.
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modelPath, threadsArg, promptArg, decodeArg, nSeqArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2);
const promptLen = Number(promptArg ?? 512);
const decodeTokens = Number(decodeArg ?? 16);
const nSeq = Number(nSeqArg ?? 8);

async function loadNodeLlamaCpp() {
  const dirs = [process.env.NODE_LLAMA_CPP_DIR, process.cwd()].filter(Boolean);
  for (const dir of dirs) {
    try {
      const req = createRequire(path.join(dir, "noop.js"));
      return await import(pathToFileURL(req.resolve("node-llama-cpp")).href);
    } catch {}
  }
  try {
    return await import("node-llama-cpp");
  } catch {
    console.error("node-llama-cpp is not installed (set NODE_LLAMA_CPP_DIR)");
    process.exit(3);
  }
}

const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const vocab = model.fileInsights?.tokenizer?.vocabSize ?? 32000;
let seed = 3;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed;
};
// Random ids away from the special tokens at the start of the synthetic vocabularies.
const randomTokens = (n) => Array.from({ length: n }, () => 300 + (rnd() % Math.max(1, vocab - 300)));
const now = () => Number(process.hrtime.bigint()) / 1e9;

async function decode(sequence, first, n) {
  let produced = 0;
  const it = sequence.evaluate([first], { temperature: 0 });
  for await (const _ of it) {
    if (++produced >= n) break;
  }
  return produced;
}

// Prefill and batch-1 decode.
{
  const ctx = await model.createContext({ contextSize: promptLen + decodeTokens + 16, batchSize: 512, threads, sequences: 1 });
  const seq = ctx.getSequence();
  await seq.evaluateWithoutGeneratingNewTokens(randomTokens(8));  // warm-up
  await seq.clearHistory();
  const prompt = randomTokens(promptLen);
  let t0 = now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const prefill = promptLen / (now() - t0);
  t0 = now();
  const produced = await decode(seq, randomTokens(1)[0], decodeTokens);
  const decode1 = produced / (now() - t0);
  await ctx.dispose();
  console.log(JSON.stringify({ prefill, decode1 }));
}

// Aggregate decode of n_seq sequences sharing one context (node-llama-cpp batches them).
{
  const ctx = await model.createContext({ contextSize: nSeq * (32 + decodeTokens), batchSize: 512, threads, sequences: nSeq });
  const seqs = Array.from({ length: nSeq }, () => ctx.getSequence());
  await Promise.all(seqs.map((s) => s.evaluateWithoutGeneratingNewTokens(randomTokens(16))));
  const t0 = now();
  const counts = await Promise.all(seqs.map((s) => decode(s, randomTokens(1)[0], decodeTokens)));
  const decodeN = counts.reduce((a, b) => a + b, 0) / (now() - t0);
  await ctx.dispose();
  console.log(JSON.stringify({ decodeN, n_seq: nSeq }));
}
await model.dispose();
