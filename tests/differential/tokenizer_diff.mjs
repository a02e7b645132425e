// Differential test: random strings (fixed seed) through the reference
// (npm `tokenizers` 0.23.2) and through BERT Studio's C tokenizer (tok_driver),
// for every fixture tokenizer.json; ids, offsets and overflowing windows must
// match. A mismatch is shrunk to a minimal failing string before it is printed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import path from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const require = createRequire(path.join(args.modules, 'x.js'));
const { Tokenizer } = require('tokenizers');
const NAMES = ['bert-base-uncased', 'bert-base-cased', 'bert-base-chinese', 'bert-base-multilingual-cased',
  'roberta-base', 'bart-large-cnn', 'albert-base-v2'];
// Synthetic variants of fixture files, to run the components the Hub files
// do not use through the reference as well.
const VARIANTS = [
  ['wp-nfc-strip-whitespace-digits', 'bert-base-uncased', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }, { type: 'Strip', strip_left: true, strip_right: true }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }] } }],
  ['wp-nfkc-replace-split-prev', 'bert-base-cased', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\p{P}+' }, behavior: 'MergedWithPrevious', invert: false }, { type: 'WhitespaceSplit' }] } }],
  ['wp-nfd-split-next-punct-digits', 'bert-base-multilingual-cased', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithNext', invert: false }, { type: 'Punctuation', behavior: 'Contiguous' }, { type: 'Digits', individual_digits: false }] } }],
  ['wp-split-removed-contiguous-chardelim', 'bert-base-uncased', {
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false }, { type: 'Split', pattern: { Regex: '\\d' }, behavior: 'Contiguous', invert: false }, { type: 'CharDelimiterSplit', delimiter: '-' }, { type: 'Split', pattern: { Regex: '\\w+' }, behavior: 'Isolated', invert: true }] } }],
  ['wp-prepend-lowercase-whitespace', 'bert-base-uncased', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: 'x' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Whitespace' } }],
  ['unigram-metaspace-first-nosplit', 'albert-base-v2', {
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false } }],
  ['bpe-bytelevel-prefix-space', 'roberta-base', {
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: true } }],
  ['bpe-bytelevel-noregex', 'roberta-base', {
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false } }],
  ['unigram-bytefallback-llama-decoder', 'albert-base-v2', (j) => {
    j.model.byte_fallback = true;
    for (let b = 0; b < 256; b++) j.model.vocab.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, -30.0]);
    j.normalizer = null;
    j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
    j.decoder = { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
      { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] };
  }],
  ['bpe-bytefallback-fuse-unk', 'roberta-base', (j) => {
    let next = Math.max(...Object.values(j.model.vocab)) + 1;
    for (let b = 0; b < 128; b++) j.model.vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = next++;
    j.model.byte_fallback = true;
    j.model.unk_token = '<unk>';
    j.model.fuse_unk = true;
    j.model.type = 'BPE';
    j.pre_tokenizer = { type: 'Whitespace' };
    j.post_processor = { type: 'BertProcessing', sep: ['</s>', 2], cls: ['<s>', 0] };
    j.decoder = { type: 'BPEDecoder', suffix: '</w>' };
  }],
];
const SINGLES = Number(process.env.BS_DIFF_N || 800);
const PAIRS = Number(process.env.BS_DIFF_PAIRS || 120);

// mulberry32: small, seedable, identical on every platform
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const R = rng(Number(process.env.BS_DIFF_SEED || 20261125));
const int = (n) => Math.floor(R() * n);
const pick = (a) => a[int(a.length)];
const cp = (lo, hi) => String.fromCodePoint(lo + int(hi - lo + 1));
const run = (f, lo, hi) => { let s = ''; const n = lo + int(hi - lo + 1); for (let i = 0; i < n; i++) s += f(); return s; };

const GEN = [
  () => run(() => pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'), 1, 12),
  () => run(() => pick('éèêëñüçÅåøæßÉÑÜÇœ'), 1, 4) + run(() => cp(97, 122), 0, 5),
  () => cp(97, 122) + run(() => cp(0x300, 0x36f), 1, 3) + cp(97, 122),
  () => run(() => cp(0x430, 0x44f), 2, 9),
  () => run(() => cp(0x3b1, 0x3c9), 2, 8),
  () => run(() => cp(0x627, 0x64a), 2, 8) + (R() < 0.3 ? cp(0x64b, 0x652) : ''),
  () => run(() => cp(0x5d0, 0x5ea), 2, 6),
  () => run(() => cp(0x915, 0x939) + (R() < 0.5 ? cp(0x93e, 0x94c) : ''), 1, 5),
  () => run(() => cp(0xe01, 0xe30) + (R() < 0.3 ? cp(0xe31, 0xe3a) : ''), 2, 8),
  () => run(() => cp(0x4e00, 0x9fff), 1, 6),
  () => run(() => cp(0xac00, 0xd7a3), 1, 4),
  () => run(() => cp(0x3041, 0x30fa), 1, 6),
  () => run(() => cp(0xff01, 0xff5e), 1, 4),
  () => run(() => cp(0x1d400, 0x1d6a3), 1, 4),
  () => run(() => cp(0x1f600, 0x1f64f), 1, 3),
  () => pick(['👨\u200d👩\u200d👧', '🚶\u200d♀️', '👍🏽', '🇫🇷', '1️⃣', '❤️', '🏳️\u200d🌈', '🧑🏿\u200d💻']),
  () => run(() => pick(['\x01', '\x07', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f', '\u0085', '\u00ad', '\u0000']), 1, 2),
  () => pick(['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u200e', '\u202e']),
  () => run(() => pick([' ', ' ', '\t', '\n', '\r\n', '\u00a0', '\u2003', '\u3000', '\u2028', '\u1680']), 1, 6),
  () => run(() => pick('.,;:!?\'"()[]{}<>-_/\\@#$%^&*+=~`|“”‘’«»—–…¿¡。、'), 1, 3),
  () => run(() => cp(48, 57), 1, 8) + (R() < 0.3 ? ',' + run(() => cp(48, 57), 3, 3) : ''),
  () => run(() => cp(0x660, 0x669), 1, 4),
  () => pick(['[MASK]', '<mask>', '[CLS]', '[SEP]', '</s>', '<s>', '<pad>', '[UNK]', '<unk>', ' <mask>', '[mask]', '``', "''"]),
  () => run(() => pick('abcdefghijklmnopqrstuvwxyz'), 150, 2500),
  () => run(() => pick(['ab', 'é', 'x\u0301', '中', 'я', '😀']), 100, 600),
  () => pick(["don't", "I'm", "we'll", "it's", "they've", "she'd", "y'all"]),
  () => pick(['https://example.com/a?b=c&d=e', 'user.name+tag@mail.example.org', 'C:\\Users\\x', 'v1.2.3-rc1']),
  () => String.fromCodePoint(pick([0x378, 0xe000, 0xf8ff, 0x10ffff, 0xfffd, 0x1f979, 0x2fa1d, 0x30000])),
];

function randomText() {
  const n = 1 + int(12);
  let s = '';
  for (let i = 0; i < n; i++) {
    s += pick(GEN)();
    const r = R();
    if (r < 0.6) s += ' '; else if (r < 0.7) s += '  ';
  }
  return s;
}

const TRUNC = [
  { ml: 32, st: 4, s: 'longest_first', left: false },
  { ml: 48, st: 8, s: 'only_second', left: false },
  { ml: 40, st: 0, s: 'only_first', left: false },
  { ml: 36, st: 6, s: 'longest_first', left: true },
];
const STRAT = { longest_first: 'LongestFirst', only_first: 'OnlyFirst', only_second: 'OnlySecond' };

class Driver {
  constructor(file) {
    this.p = spawn(args.driver, [file], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.waiting = [];
    createInterface({ input: this.p.stdout }).on('line', (l) => this.waiting.shift()(JSON.parse(l)));
  }
  ask(rq) {
    return new Promise((res) => { this.waiting.push(res); this.p.stdin.write(JSON.stringify(rq) + '\n'); });
  }
  close() { this.p.stdin.end(); }
}

async function reference(tok, rq) {
  if (rq.ml) tok.setTruncation(rq.ml, { stride: rq.st, strategy: STRAT[rq.s], direction: rq.left ? 'left' : 'right' });
  else tok.disableTruncation();
  return refEncode(tok, rq);
}

// Encodes with the truncation already set on tok.
async function refEncode(tok, rq) {
  try {
    const e = await tok.encode(rq.t, rq.p ?? null, { addSpecialTokens: true });
    const all = [e, ...e.getOverflowing()];
    const ids = Array.from(e.getIds());
    const d = [await tok.decode(ids, true), await tok.decode(ids, false)];
    return { e: all.map((x) => ({ ids: Array.from(x.getIds()), off: x.getOffsets().map((o) => [o[0], o[1]]) })), d };
  } catch (err) {
    return { err: String(err) };
  }
}

function same(a, b) {
  if (a.err || b.err) return !!a.err === !!b.err;
  return JSON.stringify(a.e) === JSON.stringify(b.e) && JSON.stringify(a.d) === JSON.stringify(b.d);
}

// The reference aborts the whole process (a panic across the FFI boundary)
// when the stride is not smaller than a truncated length; such inputs are
// only run on our side, which must refuse them with an error naming stride.
const strideError = (r) => r.err && /stride/.test(r.err);

async function differs(tok, drv, rq) {
  const ours = await drv.ask(rq);
  if (strideError(ours)) return false;
  return !same(await reference(tok, rq), ours);
}

// Delta debugging over code points of the text (then of the pair).
async function shrink(tok, drv, rq) {
  for (const field of ['t', 'p']) {
    if (typeof rq[field] !== 'string') continue;
    let chars = Array.from(rq[field]);
    for (let chunk = Math.max(1, chars.length >> 1); chunk >= 1; chunk = chunk >> 1) {
      for (let i = 0; i < chars.length;) {
        const cand = chars.slice(0, i).concat(chars.slice(i + chunk));
        if (await differs(tok, drv, { ...rq, [field]: cand.join('') })) chars = cand;
        else i += chunk;
      }
    }
    rq = { ...rq, [field]: chars.join('') };
  }
  return rq;
}

const esc = (s) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));

let failures = 0, total = 0, skipped = 0;
const t0 = Date.now();
const inputs = [];
for (let i = 0; i < SINGLES; i++) inputs.push({ t: randomText(), p: null, ml: 0, st: 0, s: 'longest_first', left: false });
for (let i = 0; i < PAIRS; i++) {
  const tr = pick(TRUNC);
  inputs.push({ t: randomText(), p: randomText() + randomText() + randomText(), ...tr });
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bs-tokdiff-'));
const runs = NAMES.map((n) => [n, path.join(args.fixtures, n, 'tokenizer.json'), inputs]);
// The variants see a third of the inputs (pairs included) to keep the test short.
const some = inputs.filter((_, i) => i % 3 === 0);
for (const [name, base, patch] of VARIANTS) {
  let j = JSON.parse(readFileSync(path.join(args.fixtures, base, 'tokenizer.json'), 'utf8'));
  if (typeof patch === 'function') patch(j);
  else j = { ...j, ...patch };
  const file = path.join(tmp, name + '.json');
  writeFileSync(file, JSON.stringify(j));
  runs.push([name, file, some]);
}
for (const [name, file, inputs] of runs) {
  const tok = Tokenizer.fromFile(file);
  const drv = new Driver(file);
  let bad = 0;
  // Ours: all requests pipelined. Reference: grouped by truncation setting
  // (a tokenizer-wide state in the binding), each group encoded concurrently.
  const ours = await Promise.all(inputs.map((rq) => drv.ask(rq)));
  const refs = new Array(inputs.length);
  const groups = new Map();
  inputs.forEach((rq, i) => {
    if (strideError(ours[i])) return;
    const k = `${rq.ml}/${rq.st}/${rq.s}/${rq.left}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(i);
  });
  for (const idx of groups.values()) {
    const rq0 = inputs[idx[0]];
    if (rq0.ml) tok.setTruncation(rq0.ml, { stride: rq0.st, strategy: STRAT[rq0.s], direction: rq0.left ? 'left' : 'right' });
    else tok.disableTruncation();
    const rs = await Promise.all(idx.map((i) => refEncode(tok, inputs[i])));
    idx.forEach((i, k) => { refs[i] = rs[k]; });
  }
  for (let i = 0; i < inputs.length; i++) {
    total++;
    if (strideError(ours[i])) { skipped++; continue; }
    if (same(refs[i], ours[i])) continue;
    const rq = inputs[i];
    bad++;
    if (bad <= 3) {
      const small = await shrink(tok, drv, rq);
      const ra = await reference(tok, small), rb = await drv.ask(small);
      console.log(`MISMATCH ${name}: text=${esc(small.t)}${small.p != null ? ' pair=' + esc(small.p) : ''}` +
        `${small.ml ? ` trunc=${small.s}/${small.ml}/${small.st}${small.left ? '/left' : ''}` : ''}`);
      console.log(`  reference: ${JSON.stringify(ra).slice(0, 600)}`);
      console.log(`  ours:      ${JSON.stringify(rb).slice(0, 600)}`);
    }
  }
  drv.close();
  console.log(`${name}: ${inputs.length - bad}/${inputs.length} inputs identical`);
  failures += bad;
}
rmSync(tmp, { recursive: true, force: true });
console.log(`differential: ${total - failures - skipped}/${total - skipped} identical (${skipped} refused for stride) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failures ? 1 : 0);
