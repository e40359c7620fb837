#!/usr/bin/env bash
# Installs llama.cpp as npm's node-llama-cpp ships it (prebuilt CPU binaries for Linux x64, one
# library per x86 microarchitecture, picked at run time) into DEST (default build/npm-llamacpp),
# for scripts/bench-llamacpp.sh and the GGUF test. Its install script is not run: it could
# download or compile llama.cpp; the prebuilt binaries need nothing more
# (scripts/llamacpp-bench.mjs loads them with build "never").
# Exit status: 0 when DEST holds the package, 3 when npm cannot fetch it.
set -euo pipefail
dest="${1:-$(dirname "$0")/../build/npm-llamacpp}"
version=3.21.1
# Only the Linux x64 CPU binaries: the package's other optional dependencies (CUDA, Vulkan, other
# platforms) would add 650 MB that a CPU run never loads.
specs=("node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version")
[ -f "$dest/node_modules/node-llama-cpp/package.json" ] && exit 0
command -v npm >/dev/null || { echo "fetch-llamacpp: npm is not installed" >&2; exit 3; }
mkdir -p "$dest"
if ! NODE_LLAMA_CPP_SKIP_DOWNLOAD=true timeout 600 npm install --prefix "$dest" --no-audit --no-fund \
    --ignore-scripts --omit=optional --save-exact "${specs[@]}" >&2; then
  echo "fetch-llamacpp: npm could not fetch ${specs[*]}" >&2
  exit 3
fi
