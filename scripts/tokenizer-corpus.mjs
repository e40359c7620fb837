// The varied corpus the tokenizer comparisons share (tokenizer-reference.mjs, tiktoken-reference.mjs):
// chunks of the repository's own text files (prose and C++) and seeded random strings drawn
// from many scripts (code points new in Unicode 15.1 to 17.0 among them), digits, whitespace
// runs, contractions, emoji, combining marks and long words.
import fs from "fs";
import path from "path";

function repoTexts(repoRoot) {
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

function randomTexts(count, extraPieces) {
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
    "[x]", "#", "@user", "http://example.com/a?b=c", "x = y + z;", "int main() {", "    return 0;", "▁", "\u00a0",
    "\u3000", "\u200b", "ﬁ", "Ⅻ", "½", "x²", "ß", "İ", "ǅ", "ꙮ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u2028",
    // Added in Unicode 15.1, 16.0 and 17.0: CJK Extension I and J ideographs, Garay, Kirat Rai and
    // outlined digits, Sunuwar and Todhri letters, a CJK stroke and a description character.
    "\u{2EBF0}\u{2EBF1}", "\u{323B0}", "\u{10D40}\u{10D41}\u{10D42}\u{10D43}", "\u{10D50}\u{10D70}",
    "\u{16D70}\u{16D71}\u{16D72}\u{16D73}\u{16D74}", "\u{1CCF0}\u{1CCF1}", "\u{11BC0}\u{11BC1}", "\u{105C0}",
    "\u31EF", "\u2FFC",
    ...extraPieces,
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

// Whitespace runs and long words, where the patterns' lookahead and BPE's merging are stressed.
function longTexts() {
  const texts = [];
  for (const n of [2, 3, 7, 16, 100]) {
    texts.push("a" + " ".repeat(n) + "b", "x" + "\n".repeat(n) + " y", "\t".repeat(n), " ".repeat(n) + "\u00a0z");
  }
  texts.push("a".repeat(3000), "ab".repeat(1500), "Supercalifragilistic".repeat(100), "東".repeat(1000));
  texts.push("9".repeat(500), "🙂".repeat(300), "x".repeat(1000) + " " + "y".repeat(1000));
  return texts;
}

// repoRoot: the checkout to take text files from; extraPieces: more strings for the random texts.
export function corpus(repoRoot, { randomCount = 3000, extraPieces = [] } = {}) {
  return [...repoTexts(repoRoot), ...randomTexts(randomCount, extraPieces), ...longTexts()];
}
