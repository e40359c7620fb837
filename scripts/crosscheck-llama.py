#!/usr/bin/python3
"""An independent PyTorch implementation of the Llama family's forward pass (llama, mistral,
qwen2, qwen3 as transformers defines them), for two jobs:

  make DIR SHAPE    write config.json and random weights in Hugging Face layout for one of the
                    shapes below (every tensor random, norms and biases included, so each one
                    matters), optionally stored as bf16/fp16 and split into shards.
  check DIR CASE    recompute from DIR the logits and greedy tokens that the C++ model wrote to
                    CASE (a safetensors file) and exit 1 unless the logits agree within 1e-4 at
                    every real (unpadded) position and the greedy tokens are identical.

Run it with Debian's /usr/bin/python3 (python3-torch); transformers is not needed. The
safetensors reader is the GPT-2 cross-check's, itself written from the format description.
"""
import argparse
import importlib.util
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

_spec = importlib.util.spec_from_file_location(
    "crosscheck_gpt2", os.path.join(os.path.dirname(os.path.abspath(__file__)), "crosscheck-gpt2.py"))
_gpt2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_gpt2)
read_safetensors = _gpt2.read_safetensors

BASE = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 101, "rms_norm_eps": 1e-6,
        "max_position_embeddings": 64, "hidden_act": "silu", "bos_token_id": 1,
        "eos_token_id": 2}

# Each shape switches on what it tests; rope scaling factors are large so a mistake shows.
SHAPES = {
    "llama-mha": dict(model_type="llama", num_key_value_heads=4, tie_word_embeddings=False),
    "llama-gqa-tied-llama3": dict(
        model_type="llama", num_key_value_heads=2, tie_word_embeddings=True, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    "llama-bias-linear": dict(model_type="llama", num_key_value_heads=2, attention_bias=True,
                              mlp_bias=True, rope_scaling={"type": "linear", "factor": 4.0}),
    "llama-dynamic": dict(model_type="llama", num_key_value_heads=1, max_position_embeddings=8,
                          rope_scaling={"type": "dynamic", "factor": 3.0}),
    "mistral-window": dict(model_type="mistral", num_key_value_heads=2, sliding_window=5,
                           eos_token_id=[2, 7]),
    "qwen2-bias": dict(model_type="qwen2", num_key_value_heads=1, tie_word_embeddings=True,
                       rope_theta=1000000.0),
    "qwen3-qknorm": dict(model_type="qwen3", num_key_value_heads=2, head_dim=16,
                         tie_word_embeddings=False, attention_bias=False),
    # GPT-2 small's size in Llama's shape, for scripts/bench-llamacpp.sh (with --vocab_size 50257
    # and GPT-2's tokenizer, whose <|endoftext|> is 50256).
    "llama-bench": dict(model_type="llama", hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                        num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=1024,
                        tie_word_embeddings=False, bos_token_id=50256, eos_token_id=50256),
}

DTYPE_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16",
               torch.int64: "I64"}


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.int16 if t.element_size() == 2 else t.dtype).numpy().tobytes()
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def tensor_shapes(cfg):
    d, inner, hd = cfg["hidden_size"], cfg["intermediate_size"], head_dim(cfg)
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    typ = cfg["model_type"]
    qkv_bias = typ == "qwen2" or cfg.get("attention_bias", False)
    o_bias = typ != "qwen2" and cfg.get("attention_bias", False)
    shapes = {"model.embed_tokens.weight": [cfg["vocab_size"], d]}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        shapes.update({p + "input_layernorm.weight": [d], p + "post_attention_layernorm.weight": [d],
                       p + "self_attn.q_proj.weight": [q, d], p + "self_attn.k_proj.weight": [kv, d],
                       p + "self_attn.v_proj.weight": [kv, d], p + "self_attn.o_proj.weight": [d, q],
                       p + "mlp.gate_proj.weight": [inner, d], p + "mlp.up_proj.weight": [inner, d],
                       p + "mlp.down_proj.weight": [d, inner]})
        if qkv_bias:
            shapes.update({p + "self_attn.q_proj.bias": [q], p + "self_attn.k_proj.bias": [kv],
                           p + "self_attn.v_proj.bias": [kv]})
        if o_bias:
            shapes[p + "self_attn.o_proj.bias"] = [d]
        if typ == "qwen3":
            shapes.update({p + "self_attn.q_norm.weight": [hd], p + "self_attn.k_norm.weight": [hd]})
        if cfg.get("mlp_bias", False):
            shapes.update({p + "mlp.gate_proj.bias": [inner], p + "mlp.up_proj.bias": [inner],
                           p + "mlp.down_proj.bias": [d]})
    shapes["model.norm.weight"] = [d]
    if not cfg.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = [cfg["vocab_size"], d]
    return shapes


def make(args):
    cfg = dict(BASE, **SHAPES[args.shape])
    if args.vocab_size:
        cfg["vocab_size"] = args.vocab_size
    gen = torch.Generator().manual_seed(args.seed)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.stored]
    weights = {}
    for name, shape in tensor_shapes(cfg).items():
        t = torch.randn(shape, generator=gen)
        if "norm" in name:
            t = 1.0 + 0.3 * t
        elif name.endswith(".bias"):
            t = 0.5 * t
        else:
            t = t / math.sqrt(shape[-1])
        weights[name] = t.to(dtype)
    cfg["torch_dtype"] = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[args.stored]
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(args.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if args.shards <= 1:
        write_safetensors(os.path.join(args.dir, "model.safetensors"), weights)
        return
    names = list(weights)
    per = -(-len(names) // args.shards)
    weight_map = {}
    for s in range(args.shards):
        shard = "model-%05d-of-%05d.safetensors" % (s + 1, args.shards)
        part = names[s * per:(s + 1) * per]
        write_safetensors(os.path.join(args.dir, shard), {n: weights[n] for n in part})
        weight_map.update({n: shard for n in part})
    with open(os.path.join(args.dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)


def load_weights(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(directory, "model.safetensors"))
    with open(index) as f:
        shards = set(json.load(f)["weight_map"].values())
    weights = {}
    for shard in shards:
        weights.update(read_safetensors(os.path.join(directory, shard)))
    return weights


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def inv_freq(cfg, seq_len):
    hd = head_dim(cfg)
    base = cfg.get("rope_theta", 10000.0)
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    factor = scaling.get("factor", 1.0)
    if kind == "dynamic" and seq_len > cfg["max_position_embeddings"]:
        base = base * ((factor * seq_len / cfg["max_position_embeddings"]) - (factor - 1)) ** (hd / (hd - 2))
    freqs = 1.0 / (base ** (torch.arange(0, hd, 2).float() / hd))
    if kind == "linear":
        return freqs / factor
    if kind != "llama3":
        return freqs
    old = scaling["original_max_position_embeddings"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    out = []
    for f in freqs.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(f)
        elif wavelen > old / low:
            out.append(f / factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def forward(cfg, w, ids, mask):
    """Logits [B, T, V] for a left-padded batch, recomputed from scratch."""
    batch, tokens = ids.shape
    hd, heads, kv_heads = head_dim(cfg), cfg["num_attention_heads"], cfg["num_key_value_heads"]
    eps, typ = cfg["rms_norm_eps"], cfg["model_type"]
    positions = torch.where(mask == 0, torch.ones_like(mask), mask.cumsum(1) - 1)
    angles = positions[..., None].double() * inv_freq(cfg, int(positions.max()) + 1).double()
    angles = torch.cat([angles, angles], -1)[:, None].float()
    cos, sin = angles.cos(), angles.sin()
    query, key = torch.arange(tokens)[:, None], torch.arange(tokens)[None, :]
    allowed = key <= query
    window = cfg.get("sliding_window") if typ == "mistral" else None
    if window:
        allowed = allowed & (query - key < window)
    allowed = allowed[None, None] & (mask != 0)[:, None, None, :]

    def lin(x, name):
        out = x @ w[name + ".weight"].T
        return out + w[name + ".bias"] if name + ".bias" in w else out

    h = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = lin(x, p + "self_attn.q_proj").view(batch, tokens, heads, hd)
        k = lin(x, p + "self_attn.k_proj").view(batch, tokens, kv_heads, hd)
        v = lin(x, p + "self_attn.v_proj").view(batch, tokens, kv_heads, hd)
        if typ == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # Query head j reads key/value head j // (heads / kv_heads).
        group = heads // kv_heads
        k = k[:, torch.arange(heads) // group]
        v = v[:, torch.arange(heads) // group]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = torch.nan_to_num(scores.softmax(-1)) @ v
        h = h + lin(out.transpose(1, 2).reshape(batch, tokens, heads * hd), p + "self_attn.o_proj")
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        h = h + lin(F.silu(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return h @ head.T


def greedy(cfg, w, prompt, steps):
    ids = list(prompt)
    for _ in range(steps):
        t = torch.tensor([ids])
        ids.append(int(forward(cfg, w, t, torch.ones_like(t))[0, -1].argmax()))
    return ids[len(prompt):]


def check(args):
    with open(os.path.join(args.dir, "config.json")) as f:
        cfg = json.load(f)
    w = {k: v.float() for k, v in load_weights(args.dir).items()}
    case = read_safetensors(args.case)
    ids, mask, theirs = case["input_ids"], case["attention_mask"], case["logits"]
    with torch.no_grad():
        ours = forward(cfg, w, ids, mask)
    real = mask != 0
    diff = (ours[real] - theirs[real]).abs().max().item()
    failures = []
    if ours.shape != theirs.shape or not diff <= 1e-4:
        failures.append("logits differ by %g (shape %s vs %s)" % (diff, tuple(ours.shape), tuple(theirs.shape)))
    tokens = case["greedy_tokens"]
    for row in range(ids.shape[0]):
        prompt = ids[row][real[row]].tolist()
        expected = greedy(cfg, w, prompt, tokens.shape[1])
        if expected != tokens[row].tolist():
            failures.append("greedy row %d: reference %s, C++ %s" % (row, expected, tokens[row].tolist()))
    if failures:
        print("crosscheck FAILED (%s): %s" % (cfg["model_type"], "; ".join(failures)))
        return 1
    print("crosscheck ok: %s logits %s max diff %.3g, greedy %d x %d tokens identical"
          % (cfg["model_type"], tuple(ours.shape), diff, tokens.shape[0], tokens.shape[1]))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("shape", choices=sorted(SHAPES))
    m.add_argument("--stored", choices=["f32", "bf16", "f16"], default="f32")
    m.add_argument("--shards", type=int, default=1)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--vocab_size", type=int, default=0, help="to fit a tokenizer (default 101)")
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("case")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    return make(args) or 0 if args.command == "make" else check(args)


if __name__ == "__main__":
    sys.exit(main())
