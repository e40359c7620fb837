// Writes a varied corpus and what transformers.js' tokenizer.json implementation
// (@lenml/tokenizers) makes of it, for tests/models/test_tokenizer_json.cpp:
//   node tokenizer-reference.mjs NODE_MODULES TOKENIZER_DIR REPO_ROOT OUT.json
// OUT.json: {"texts": [...], "ids": [[...]], "ids_special": [[...]], "decoded": ["..."]}.
// The corpus: chunks of the repository's own text files (prose and C++) and seeded random
// strings drawn from many scripts, digits, whitespace runs, contractions, emoji, combining marks
// and the tokenizers' special tokens.
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const [modules, tokenizerDir, repoRoot, outPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const { TokenizerLoader } = require("@lenml/tokenizers");

const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(tokenizerDir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(tokenizerDir, "tokenizer_config.json"), "utf8")),
});

function repoTexts() {
  const out = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(md|cpp|h|py|sh)$/.test(entry.name)) out.push(fs.readFileSync(full, "utf8"));
    }
  };
  for (const d of ["docs", "lib", "scripts"]) walk(path.join(repoRoot, d));
  out.push(fs.readFileSync(path.join(repoRoot, "README.md"), "utf8"));
  const chunks = [];
  for (const text of out)
    for (let at = 0; at < text.length; at += 1500) chunks.push(text.slice(at, at + 1500));
  return chunks;
}

function randomTexts(count) {
  let state = 20240601;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (list) => list[Math.floor(next() * list.length)];
  const pieces = [
    "the", "The", "QUICK", "brown", "fox", "don't", "I'M", "we'll", "they'RE", "it's", "'s", "'t", "naïve",
    "café", "e\u0301", "A\u030a", "東京", "日本語のテキスト", "中文分词", "한국어", "Привет", "мир", "العربية", "עברית",
    "हिन्दी", "ไทย", "Ελληνικά", "🙂", "👍🏽", "🇫🇷", "👨‍👩‍👧", "123", "4567", "3.14159", "1,000,000", "٣٤٥",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "...", "!!", "?", "—", "–", "«", "»", "(", ")", "{", "}",
    "[x]", "#", "@user", "http://example.com/a?b=c", "x = y + z;", "int main() {", "    return 0;", "</s>",
    "<s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<think>", "▁", "\u00a0",
    "\u3000", "\u200b", "ﬁ", "Ⅻ", "½", "x²", "ß", "İ", "ǅ", "ꙮ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u2028",
  ];
  const texts = [];
  for (let i = 0; i < count; ++i) {
    const n = 1 + Math.floor(next() * 40);
    let s = "";
    for (let k = 0; k < n; ++k) s += (next() < 0.3 ? " " : "") + pick(pieces);
    texts.push(s);
  }
  return texts;
}

const texts = [...repoTexts(), ...randomTexts(3000)];
const ids = texts.map((t) => Array.from(tokenizer.encode(t, { add_special_tokens: false })));
const idsSpecial = texts.map((t) => Array.from(tokenizer.encode(t)));
const decoded = ids.map((x) => tokenizer.decode(x, { skip_special_tokens: true }));
fs.writeFileSync(outPath, JSON.stringify({ texts, ids, ids_special: idsSpecial, decoded }));
console.log(`tokenizer-reference: ${texts.length} texts, ${texts.reduce((a, t) => a + t.length, 0)} characters`);
