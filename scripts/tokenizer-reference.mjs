// Writes a varied corpus and what transformers.js' tokenizer.json implementation
// (@lenml/tokenizers) makes of it, for tests/models/test_tokenizer_json.cpp:
//   node tokenizer-reference.mjs NODE_MODULES TOKENIZER_DIR REPO_ROOT OUT.json
// OUT.json: {"texts": [...], "ids": [[...]], "ids_special": [[...]], "decoded": ["..."]}.
// The corpus: tokenizer-corpus.mjs's, with the tokenizers' special tokens among its pieces.
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import { corpus } from "./tokenizer-corpus.mjs";

const [modules, tokenizerDir, repoRoot, outPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const { TokenizerLoader } = require("@lenml/tokenizers");

const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(tokenizerDir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(tokenizerDir, "tokenizer_config.json"), "utf8")),
});

const specialTokens = ["</s>", "<s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<think>"];
const texts = corpus(repoRoot, { extraPieces: specialTokens });
const ids = texts.map((t) => Array.from(tokenizer.encode(t, { add_special_tokens: false })));
const idsSpecial = texts.map((t) => Array.from(tokenizer.encode(t)));
const decoded = ids.map((x) => tokenizer.decode(x, { skip_special_tokens: true }));
fs.writeFileSync(outPath, JSON.stringify({ texts, ids, ids_special: idsSpecial, decoded }));
console.log(`tokenizer-reference: ${texts.length} texts, ${texts.reduce((a, t) => a + t.length, 0)} characters`);
