#!/usr/bin/env bash
# gguf_llamacpp_test.sh MODELS_BENCH SOURCE_DIR NPM_DIR: scripts/convert-to-gguf.py on tiny
# checkpoints. Its errors name the file and key at fault and leave no output behind; and, when
# node-llama-cpp is installed in NPM_DIR (scripts/fetch-llamacpp.sh; nothing is downloaded here),
# llama.cpp's 12 greedy tokens on each converted model (GPT-2, and Llama with 4 heads, whose q/k rows
# the converter reorders) equal ours from models_bench --model-dir on the checkpoint. Exit 77 (a
# ctest skip, never a pass) when node or the package is absent, after the error checks ran.
set -euo pipefail
bench=$1 source=$2 npm=$3
python=/usr/bin/python3
convert=("$python" "$source/scripts/convert-to-gguf.py")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# A tiny GPT-2 in the ecosystem's layout (Conv1D weights [in, out], non-square where it can be)
# with GPT-2's vocabulary, and a tiny Llama (4 query and 4 key-value heads of 8), both seeded.
"$python" - "$source" "$work/gpt2" <<'PY'
import importlib.util, json, os, sys, torch
source, out = sys.argv[1:]
spec = importlib.util.spec_from_file_location("crosscheck_llama", os.path.join(source, "scripts/crosscheck-llama.py"))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
d, layers, vocab, positions = 32, 2, 50257, 64
shapes = {"transformer.wte.weight": [vocab, d], "transformer.wpe.weight": [positions, d],
          "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d]}
for i in range(layers):
    p = "transformer.h.%d." % i
    for name, shape in (("ln_1", [d]), ("ln_2", [d]), ("attn.c_attn", [d, 3 * d]), ("attn.c_proj", [d, d]),
                        ("mlp.c_fc", [d, 4 * d]), ("mlp.c_proj", [4 * d, d])):
        shapes[p + name + ".weight"] = shape
        shapes[p + name + ".bias"] = [shape[-1]]
gen = torch.Generator().manual_seed(3)
weights = {}
for name, shape in shapes.items():
    t = torch.randn(shape, generator=gen)
    if ".ln_" in name or name.startswith("transformer.ln_f"):
        t = 1.0 + 0.2 * t if name.endswith("weight") else 0.1 * t
    elif name.endswith(".bias"):
        t = 0.1 * t
    else:  # embeddings and projections: O(1) activations and well separated logits
        t = 0.5 * t if name in ("transformer.wte.weight", "transformer.wpe.weight") else t / shape[0] ** 0.5
    weights[name] = t
os.makedirs(out)
module.write_safetensors(os.path.join(out, "model.safetensors"), weights)
json.dump({"model_type": "gpt2", "n_embd": d, "n_layer": layers, "n_head": 4, "n_positions": positions,
           "vocab_size": vocab, "layer_norm_epsilon": 1e-5, "bos_token_id": 50256, "eos_token_id": 50256},
          open(os.path.join(out, "config.json"), "w"))
PY
"$python" "$source/scripts/crosscheck-llama.py" make "$work/llama" llama-mha --vocab_size 50257 --seed 5
for model in gpt2 llama; do cp "$source/data/gpt2/encoder.json" "$source/data/gpt2/vocab.bpe" "$work/$model/"; done

# expect_error NAME TEXT COMMAND...: the command exits 2 and prints TEXT.
expect_error() {
  local name=$1 text=$2 status=0 output
  shift 2
  output=$("$@" 2>&1) || status=$?
  [ "$status" = 2 ] || fail "$name: exit status $status, expected 2 ($output)"
  grep -qF -- "$text" <<<"$output" || fail "$name: the message '$output' does not contain '$text'"
}
mkdir "$work/empty"
expect_error "no config.json" "$work/empty/config.json: not found" "${convert[@]}" "$work/empty" "$work/x.gguf"
cp -r "$work/llama" "$work/scaled"
"$python" -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["rope_scaling"] = {"type": "linear", "factor": 2.0}; json.dump(c, open(p, "w"))' "$work/scaled/config.json"
expect_error "rope scaling" "$work/scaled/config.json: key \"rope_scaling\"" "${convert[@]}" "$work/scaled" "$work/x.gguf"
"$python" -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["model_type"] = "bert"; json.dump(c, open(p, "w"))' "$work/scaled/config.json"
expect_error "model_type" "model_type 'bert' is not supported; supported: gpt2, llama" "${convert[@]}" "$work/scaled" "$work/x.gguf"
cp -r "$work/gpt2" "$work/untokenized" && rm "$work/untokenized/vocab.bpe"
expect_error "no tokenizer" "$work/untokenized: has no GPT-2 tokenizer files" "${convert[@]}" "$work/untokenized" "$work/x.gguf"
"$python" "$source/scripts/crosscheck-llama.py" make "$work/small-vocab" llama-mha
cp "$source/data/gpt2/encoder.json" "$source/data/gpt2/vocab.bpe" "$work/small-vocab/"
expect_error "vocabulary size" "the tokenizer has 50257 tokens but the model's embedding has 101 rows" \
  "${convert[@]}" "$work/small-vocab" "$work/x.gguf"
echo "keep" >"$work/existing.gguf"
expect_error "existing output" "$work/existing.gguf: exists; pass --overwrite" "${convert[@]}" "$work/gpt2" "$work/existing.gguf"
[ "$(cat "$work/existing.gguf")" = keep ] || fail "existing output: the file was changed"
[ ! -e "$work/x.gguf" ] || fail "a failed conversion left $work/x.gguf"
ls "$work"/.convert-* >/dev/null 2>&1 && fail "a failed conversion left a temporary file"
"${convert[@]}" "$work/gpt2" "$work/existing.gguf" --overwrite >/dev/null || fail "--overwrite did not convert"
[ "$(head -c 4 "$work/existing.gguf")" = GGUF ] || fail "--overwrite did not replace the file with a GGUF file"

modules="$npm/node_modules"
if ! command -v node >/dev/null || [ ! -f "$modules/node-llama-cpp/package.json" ]; then
  [ "$failures" = 0 ] || exit 1
  echo "SKIPPED: llama.cpp comparison: node or node-llama-cpp in $npm is missing (scripts/fetch-llamacpp.sh installs it)"
  exit 77
fi
for model in gpt2 llama; do
  "${convert[@]}" "$work/$model" "$work/$model.gguf" >/dev/null
  ours=$("$bench" --model-dir "$work/$model" --threads 1 --prompt 8 --tokens 8 --new-tokens 12 --repeats 1)
  prompt=$(awk '$1 == "prompt_ids" { $1 = ""; print }' <<<"$ours")
  theirs=$(node "$source/scripts/llamacpp-bench.mjs" "$modules" "$work/$model.gguf" --threads 1 --prompt-ids "$prompt" \
    --new-tokens 12 --repeats 1 --kv-type F32)
  a=$(awk '$1 == "greedy_ids"' <<<"$ours") b=$(awk '$1 == "greedy_ids"' <<<"$theirs")
  if [ "$a" = "$b" ]; then echo "$model: llama.cpp and ours agree: $a"; else fail "$model: ours '$a', llama.cpp '$b'"; fi
done
[ "$failures" = 0 ]
