#!/usr/bin/python3
"""An independent PyTorch implementation of GPT-2's forward pass, for two jobs:

  check DIR CASE   recompute the logits of CASE (a safetensors file with input_ids,
                   attention_mask and the C++ model's logits) from DIR's config.json and
                   model.safetensors, and exit 1 unless they agree (allclose).
  bench ...        time eager forward and greedy cached generation for a random model,
                   the Python side of scripts/bench-models.sh.

Run it with Debian's /usr/bin/python3 (python3-torch); it needs nothing else. The safetensors
reader here is written from the format description, not shared with the C++ code.
"""
import argparse
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8,
          "BOOL": torch.bool}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    data = blob[8 + length:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[entry["dtype"]])
        out[name] = flat.reshape(entry["shape"])
    return out


def strip_prefix(weights):
    return {k[len("transformer."):] if k.startswith("transformer.") else k: v
            for k, v in weights.items()}


def activation(x, name):
    if name == "relu":
        return torch.relu(x)
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def forward(w, cfg, ids, mask, past=None):
    """Hidden states after ln_f. `mask` covers past and new tokens; `past` (a list of (k, v)
    per layer, or None) is extended in place when given."""
    d, heads = cfg["n_embd"], cfg["n_head"]
    hd = d // heads
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    batch, new = ids.shape
    total = mask.shape[1]
    positions = torch.where(mask == 0, torch.ones_like(mask), mask.cumsum(1) - 1)[:, total - new:]
    h = w["wte.weight"][ids] + w["wpe.weight"][positions]
    query_pos = torch.arange(total - new, total)[:, None]
    key_pos = torch.arange(total)[None, :]
    allowed = (key_pos <= query_pos)[None, None] & (mask != 0)[:, None, None, :]
    for i in range(cfg["n_layer"]):
        p = "h.%d." % i
        x = F.layer_norm(h, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = (x @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]).split(d, dim=2)
        q, k, v = (t.reshape(batch, new, heads, hd).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            if len(past) > i:
                k = torch.cat([past[i][0], k], 2)
                v = torch.cat([past[i][1], v], 2)
                past[i] = (k, v)
            else:
                past.append((k, v))
        att = q @ k.transpose(-1, -2)
        if cfg.get("scale_attn_weights", True):
            att = att / math.sqrt(hd)
        att = att.float().masked_fill(~allowed, torch.finfo(torch.float32).min).softmax(-1)
        y = (att.to(v.dtype) @ v).transpose(1, 2).reshape(batch, new, d)
        h = h + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        x = F.layer_norm(h, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = activation(x @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"],
                       cfg.get("activation_function", "gelu_new"))
        h = h + x @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    return F.layer_norm(h, (d,), w["ln_f.weight"], w["ln_f.bias"], eps)


def lm_logits(w, hidden):
    return hidden @ w.get("lm_head.weight", w["wte.weight"]).t()


def classification_logits(w, hidden, mask):
    last = torch.tensor([int(torch.nonzero(row).max()) for row in mask])
    return hidden[torch.arange(hidden.shape[0]), last] @ w["score.weight"].t()


def check(args):
    with open(args.dir + "/config.json") as f:
        cfg = json.load(f)
    w = {k: v.float() for k, v in strip_prefix(read_safetensors(args.dir + "/model.safetensors")).items()}
    case = read_safetensors(args.case)
    ids, mask, expected = case["input_ids"], case["attention_mask"], case["logits"].float()
    with torch.no_grad():
        hidden = forward(w, cfg, ids, mask)
        got = classification_logits(w, hidden, mask) if "score.weight" in w else lm_logits(w, hidden)
    if "score.weight" not in w:
        # Padding positions carry no meaning; compare real tokens only.
        keep = mask.bool()
        got, expected = got[keep], expected[keep]
    diff = (got - expected).abs().max().item()
    ok = got.shape == expected.shape and torch.allclose(got, expected, rtol=args.rtol, atol=args.atol)
    print("crosscheck %s: shape %s, max abs diff %.3g (rtol %g, atol %g)"
          % ("ok" if ok else "FAILED", tuple(got.shape), diff, args.rtol, args.atol))
    return 0 if ok else 1


def random_weights(cfg, dtype):
    d, inner, std = cfg["n_embd"], 4 * cfg["n_embd"], 0.02
    g = torch.Generator().manual_seed(0)

    def normal(*shape):
        return (torch.randn(*shape, generator=g) * std).to(dtype)

    w = {"wte.weight": normal(cfg["vocab_size"], d), "wpe.weight": normal(cfg["n_positions"], d),
         "ln_f.weight": torch.ones(d, dtype=dtype), "ln_f.bias": torch.zeros(d, dtype=dtype)}
    for i in range(cfg["n_layer"]):
        p = "h.%d." % i
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"] = torch.ones(d, dtype=dtype)
            w[p + ln + ".bias"] = torch.zeros(d, dtype=dtype)
        for name, shape in (("attn.c_attn", (d, 3 * d)), ("attn.c_proj", (d, d)),
                            ("mlp.c_fc", (d, inner)), ("mlp.c_proj", (inner, d))):
            w[p + name + ".weight"] = normal(*shape)
            w[p + name + ".bias"] = torch.zeros(shape[1], dtype=dtype)
    return w


def best_of(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench(args):
    torch.set_num_threads(args.threads)
    cfg = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    w = random_weights(cfg, dtype)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg["vocab_size"], (args.batch, args.tokens), generator=g)
    mask = torch.ones_like(ids)
    prompt = ids[:, :args.prompt]

    def run_forward():
        lm_logits(w, forward(w, cfg, ids, mask))

    def run_generate(new_tokens=args.new_tokens):
        past, seq, m = [], prompt, torch.ones_like(prompt)
        step_ids = prompt
        for _ in range(new_tokens):
            hidden = forward(w, cfg, step_ids, m, past)
            step_ids = lm_logits(w, hidden[:, -1:]).argmax(-1)
            seq = torch.cat([seq, step_ids], 1)
            m = torch.cat([m, torch.ones_like(step_ids)], 1)

    with torch.no_grad():
        run_forward()  # warm-up
        forward_s = best_of(args.repeats, run_forward)
        generate_s = best_of(args.repeats, run_generate)
        prefill_s = best_of(args.repeats, lambda: run_generate(1))
    print("forward_tokens_per_s %.1f" % (args.batch * args.tokens / forward_s))
    print("generate_tokens_per_s %.1f" % (args.batch * args.new_tokens / generate_s))
    # As models_bench: the first token is the prefill, each further one a decode step.
    print("decode_tokens_per_s %.1f" % (args.batch * (args.new_tokens - 1) / (generate_s - prefill_s)))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("case")
    c.add_argument("--rtol", type=float, default=1e-4)
    c.add_argument("--atol", type=float, default=1e-5)
    b = sub.add_parser("bench")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--tokens", type=int, default=128)
    b.add_argument("--prompt", type=int, default=16)
    b.add_argument("--new-tokens", type=int, default=32)
    b.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    return check(args) if args.command == "check" else bench(args)


if __name__ == "__main__":
    sys.exit(main())
