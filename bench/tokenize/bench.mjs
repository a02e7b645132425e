// Reference peers for the tokenizer benchmark, on the same lines as the C
// program: `tokenizers` (HuggingFace's Rust library, Node binding; encode
// line by line, and encodeBatch which runs on all cores) and the pure-JS
// port `@huggingface/tokenizers`. Prints {"tokens", "seconds"} (best of 3).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [lib, mode, dir, file, modules] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.length);
const json = readFileSync(path.join(dir, 'tokenizer.json'), 'utf8');
const now = () => Number(process.hrtime.bigint()) / 1e9;
let run;
if (lib === 'tokenizers') {
  const { Tokenizer } = createRequire(path.join(modules, 'x.js'))('tokenizers');
  const tok = Tokenizer.fromString(json);
  run = mode === 'batch'
    ? async () => (await tok.encodeBatch(lines)).reduce((s, e) => s + e.getLength(), 0)
    : async () => { let s = 0; for (const l of lines) s += (await tok.encode(l)).getLength(); return s; };
} else {
  const { Tokenizer } = await import(path.join(modules, '@huggingface/tokenizers/dist/tokenizers.mjs'));
  let config = {};
  try { config = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')); } catch {}
  const tok = new Tokenizer(JSON.parse(json), config);
  run = async () => { let s = 0; for (const l of lines) s += tok.encode(l).ids.length; return s; };
}
let best = Infinity, tokens = 0;
for (let i = 0; i < 3; i++) {
  const t0 = now();
  tokens = await run();
  best = Math.min(best, now() - t0);
}
console.log(JSON.stringify({ tokens, seconds: Number(best.toFixed(4)) }));
