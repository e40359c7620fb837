// Writes a varied corpus and OpenAI tiktoken's GPT-2 ids for it, from both npm builds: the Rust
// core compiled to wasm (`tiktoken`, what Python's tiktoken runs) and the pure JS port
// (`js-tiktoken`), for tests/models/test_tokenizer.cpp:
//   node tiktoken-reference.mjs NODE_MODULES REPO_ROOT OUT.json
// OUT.json: {"texts": [...], "ids": {"tiktoken": [[...]], "js-tiktoken": [[...]]}}.
// "<|endoftext|>" counts as the special token, as in GPT2Tokenizer::encode.
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import { corpus } from "./tokenizer-corpus.mjs";

const [modules, repoRoot, outPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const wasm = require("tiktoken").get_encoding("gpt2");
const js = require("js-tiktoken").getEncoding("gpt2");

const texts = corpus(repoRoot, { extraPieces: ["<|endoftext|>"] });
const ids = {
  "tiktoken": texts.map((t) => Array.from(wasm.encode(t, "all"))),
  "js-tiktoken": texts.map((t) => js.encode(t, "all")),
};
wasm.free();
fs.writeFileSync(outPath, JSON.stringify({ texts, ids }));
console.log(`tiktoken-reference: ${texts.length} texts, ${texts.reduce((a, t) => a + t.length, 0)} characters`);
