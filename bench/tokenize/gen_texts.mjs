// Writes the two 1 MiB benchmark texts, deterministically (fixed seed):
// english.txt (English prose) and mixed.txt (Latin, accents, Cyrillic, Greek,
// Arabic, Devanagari, CJK, Hangul, emoji), one paragraph per line.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const out = process.argv[2] || '.';
let a = 42;
const R = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const pick = (v) => v[Math.floor(R() * v.length)];
const WORDS = ('the of and to in is was for that with as on by at from his her it an were which are this be ' +
  'had not have one their has but first after also they new two been other who more city time world year ' +
  'people during school united state company government university national would between century music ' +
  'known however several although international development information approximately characteristics ' +
  'tokenization transformer encoder attention representation performance benchmark throughput latency').split(' ');
const MIXED = [() => pick(WORDS), () => pick(['café', 'naïve', 'Zürich', 'São', 'Ærø', 'façade']),
  () => pick(['привет', 'мир', 'книга', 'Москва']), () => pick(['καλημέρα', 'κόσμος']),
  () => pick(['مرحبا', 'العالم', 'كتاب']), () => pick(['नमस्ते', 'दुनिया', 'भारत']),
  () => pick(['東京', '日本語', '中华人民共和国', '北京大学']), () => pick(['안녕하세요', '세계']),
  () => pick(['😀', '👍🏽', '🇫🇷', '👨‍👩‍👧']), () => String(Math.floor(R() * 100000))];

function text(word) {
  const lines = [];
  let size = 0;
  while (size < 1 << 20) {
    let para = '';
    const sentences = 3 + Math.floor(R() * 5);
    for (let s = 0; s < sentences; s++) {
      const n = 6 + Math.floor(R() * 14);
      let sent = '';
      for (let i = 0; i < n; i++) sent += (i ? (R() < 0.08 ? ', ' : ' ') : '') + word();
      para += (s ? ' ' : '') + sent.charAt(0).toUpperCase() + sent.slice(1) + pick(['.', '.', '.', '!', '?']);
    }
    lines.push(para);
    size += Buffer.byteLength(para) + 1;
  }
  let s = lines.join('\n');
  while (Buffer.byteLength(s) > 1 << 20) s = s.slice(0, -1);
  return s;
}
writeFileSync(path.join(out, 'english.txt'), text(() => pick(WORDS)));
writeFileSync(path.join(out, 'mixed.txt'), text(() => pick(MIXED)()));
