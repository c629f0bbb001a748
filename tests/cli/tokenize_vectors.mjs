// `frugal tokenize` must reproduce SentencePiece's ids for every line of the shared
// vectors file with the Llama-2 fixture. Exits 77 (CTest skip) when fixtures are absent.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const [frugal, fixtures] = process.argv.slice(2);
const model = `${fixtures}/llama-2-tiny-random.gguf`;
const vectors = `${fixtures}/llama2-spm-vectors.jsonl`;
if (!existsSync(model) || !existsSync(vectors)) {
  console.log(`SKIPPED: fixtures not found under ${fixtures}`);
  process.exit(77);
}
const cases = readFileSync(vectors, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const input = cases.map((c) => JSON.stringify(c.text)).join('\n') + '\n';
const r = spawnSync(frugal, ['tokenize', model], { input, encoding: 'utf8' });
if (r.status !== 0) { console.error(r.stderr); process.exit(1); }
const got = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
let bad = 0;
cases.forEach((c, i) => {
  if (JSON.stringify(got[i]) !== JSON.stringify(c.ids)) {
    bad++;
    console.error(`line ${i + 1}: ${JSON.stringify(c.text)}\n  want ${JSON.stringify(c.ids)}\n  got  ${JSON.stringify(got[i])}`);
  }
});
console.log(`${cases.length - bad} passed, ${bad} failed`);
process.exit(bad === 0 && got.length === cases.length ? 0 : 1);
