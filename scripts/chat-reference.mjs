// The token ids transformers.js (@lenml/tokenizers) gives the chat test renderings, for
// tests/models/test_chat.cpp. transformers' apply_chat_template(tokenize=True) encodes the
// rendered text with add_special_tokens=False (the template wrote BOS itself); the renderings are
// jinja2's (tests/models/data/chat/expected.json), since transformers.js' own Jinja lacks parts
// of the syntax these templates use (~, [::-1], filters on lists).
//   node chat-reference.mjs NODE_MODULES EXPECTED_JSON OUT.json NAME=PACKAGE...
// Each NAME is a template of EXPECTED_JSON ("qwen3") encoded with PACKAGE's models/ tokenizer.
// OUT.json: {"NAME/conversation/gen|nogen": {"ids": [...], "ids_with_special_tokens": [...]}}.
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const [modules, expectedPath, outPath, ...models] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));

const out = {};
for (const spec of models) {
  const [name, pkg] = spec.split("=");
  const dir = path.join(modules, pkg, "models");
  const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  for (const [key, rendering] of Object.entries(expected)) {
    if (!key.startsWith(name + "/") || rendering.text === undefined) continue;
    out[key] = {
      ids: Array.from(tokenizer.encode(rendering.text, { add_special_tokens: false })),
      ids_with_special_tokens: Array.from(tokenizer.encode(rendering.text)),
    };
  }
}
fs.writeFileSync(outPath, JSON.stringify(out));
console.log(`chat-reference: ${Object.keys(out).length} renderings encoded`);
