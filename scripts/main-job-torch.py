#!/usr/bin/python3
"""The main job (apps/examples/distributed_inference) written the way a PyTorch user would write it,
for scripts/bench-main-job.sh to run side by side with the C++ job:

  make DIR [--layers 12]            write a GPT-2-small-size checkpoint with random weights:
                                    config.json, model.safetensors, vocab.json + merges.txt
  job --model_dir DIR --prompts FILE [--batch_size 8 --max_new_tokens 32 --threads 1]
                                    run under torchrun: split the prompts between the ranks
                                    (contiguous shares, as split_between_processes), greedy
                                    generation in left-padded batches with a key/value cache,
                                    gather the completions on rank 0

The model math is scripts/crosscheck-gpt2.py's (the independent GPT-2 implementation the C++ model is
checked against), in eager mode under torch.inference_mode(). The tokenizer is a small byte-level
BPE over GPT-2's files, exact for the ASCII prompts the benchmark uses. Rank 0 prints each rank's
timeline as `timeline rank=R ready=T group=T load=T first_token=T done=T tokens=N load_rchar=B
rss_anon_kb=K rss_file_kb=K` (times in wall-clock seconds since the epoch; bytes read() while loading;
resident memory at the end), the same line distributed_inference prints. Debian's python3-torch only.
"""
import argparse
import importlib.util
import json
import mmap
import os
import re
import shutil
import struct
import sys
import time

import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("crosscheck_gpt2", os.path.join(HERE, "crosscheck-gpt2.py"))
gpt2 = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpt2)

GPT2_SMALL = {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
              "n_head": 12, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "bos_token_id": 50256, "eos_token_id": 50256}


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, t in tensors.items():
        size = t.numel() * t.element_size()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, so readers can map it in place
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for t in tensors.values():
            f.write(t.contiguous().numpy().tobytes())
    os.replace(path + ".tmp", path)


def make(args):
    cfg = dict(GPT2_SMALL, n_layer=args.layers)
    weights = {"transformer." + k: v for k, v in gpt2.random_weights(cfg, torch.float32).items()}
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(args.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(args.dir, "model.safetensors"), weights)
    data = os.path.join(HERE, "..", "data", "gpt2")
    shutil.copyfile(os.path.join(data, "encoder.json"), os.path.join(args.dir, "vocab.json"))
    shutil.copyfile(os.path.join(data, "vocab.bpe"), os.path.join(args.dir, "merges.txt"))
    print("main-job-torch: wrote %s (%d tensors, %.0f MB)" % (
        args.dir, len(weights), sum(t.numel() * 4 for t in weights.values()) / 1e6))
    return 0


def read_weights(path):
    """Tensors viewing the file through a private mapping: nothing is copied until written."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    (length,) = struct.unpack("<Q", mapped[:8])
    header = json.loads(mapped[8:8 + length])
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(mapped, dtype=torch.float32, count=(end - begin) // 4, offset=8 + length + begin)
        out[name] = flat.view(entry["shape"])
    return gpt2.strip_prefix(out)


class Tokenizer:
    """GPT-2's byte-level BPE; the pre-tokenizer is GPT-2's pattern with ASCII classes."""
    PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")

    def __init__(self, directory):
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            self.ids = json.load(f)
        with open(os.path.join(directory, "merges.txt"), encoding="utf-8") as f:
            pairs = [tuple(line.split()) for line in f.read().splitlines()[1:] if line]
        self.ranks = {pair: rank for rank, pair in enumerate(pairs)}
        visible = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
        extra = [b for b in range(256) if b not in visible]
        self.byte_char = {b: chr(b) for b in visible}
        self.byte_char.update({b: chr(256 + i) for i, b in enumerate(extra)})
        self.char_byte = {c: b for b, c in self.byte_char.items()}
        self.tokens = {i: t for t, i in self.ids.items()}

    def encode(self, text):
        out = []
        for piece in self.PATTERN.findall(text):
            symbols = [self.byte_char[b] for b in piece.encode("utf-8")]
            while len(symbols) > 1:
                ranked = [(self.ranks.get(pair, 1 << 30), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
                rank, i = min(ranked)
                if rank == 1 << 30:
                    break
                symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
            out.extend(self.ids[s] for s in symbols)
        return out

    def decode(self, ids):
        text = "".join(self.tokens[i] for i in ids if i in self.tokens)
        return bytes(self.char_byte[c] for c in text).decode("utf-8", errors="replace")


def generate(w, cfg, prompts, max_new_tokens, on_first_token):
    """Greedy decoding of a left-padded batch with a key/value cache; stops each row at EOS."""
    eos = cfg["eos_token_id"]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[eos] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    past, step_ids, new = [], ids, [[] for _ in prompts]
    finished = torch.zeros(len(prompts), dtype=torch.bool)
    for step in range(max_new_tokens):
        hidden = gpt2.forward(w, cfg, step_ids, mask, past)
        next_ids = gpt2.lm_logits(w, hidden[:, -1]).argmax(-1).masked_fill(finished, eos)
        if step == 0:
            on_first_token()
        for row, token in enumerate(next_ids.tolist()):
            if not finished[row]:
                new[row].append(token)
        finished |= next_ids == eos
        if bool(finished.all()):
            break
        step_ids = next_ids[:, None]
        mask = torch.cat([mask, torch.ones_like(step_ids)], 1)
    return new


def proc_fields(path, names):
    """Integer fields of a /proc file of `name: value` lines (kB units are left as they are)."""
    with open(path) as f:
        pairs = (line.split(":", 1) for line in f if ":" in line)
        return {k: int(v.split()[0]) for k, v in pairs if k in names}


def job(args):
    ready = time.time()
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo")
    group = time.time()
    rank, world = dist.get_rank(), dist.get_world_size()
    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    rchar = proc_fields("/proc/self/io", {"rchar"})["rchar"]
    w = read_weights(os.path.join(args.model_dir, "model.safetensors"))
    tokenizer = Tokenizer(args.model_dir)
    load = time.time()
    load_rchar = proc_fields("/proc/self/io", {"rchar"})["rchar"] - rchar
    with open(args.prompts, encoding="utf-8") as f:
        prompts = [line.rstrip("\r\n") for line in f if line.strip()]
    share = -(-len(prompts) // world)
    mine = prompts[rank * share:(rank + 1) * share]
    marks = {}
    completions = []
    with torch.inference_mode():
        for start in range(0, len(mine), args.batch_size):
            batch = [tokenizer.encode(p) for p in mine[start:start + args.batch_size]]
            new = generate(w, cfg, batch, args.max_new_tokens, lambda: marks.setdefault("first_token", time.time()))
            completions.extend(tokenizer.decode(ids) for ids in new)
            marks["tokens"] = marks.get("tokens", 0) + sum(len(ids) for ids in new)
    done = time.time()
    rss = proc_fields("/proc/self/status", {"RssAnon", "RssFile"})
    line = ("timeline rank=%d ready=%.6f group=%.6f load=%.6f first_token=%.6f done=%.6f tokens=%d load_rchar=%d "
            "rss_anon_kb=%d rss_file_kb=%d" % (rank, ready, group, load, marks.get("first_token", done), done,
                                               marks.get("tokens", 0), load_rchar, rss["RssAnon"], rss["RssFile"]))
    gathered = [None] * world if rank == 0 else None
    dist.gather_object((line, completions), gathered, dst=0)
    if rank == 0:
        index = 0
        for rank_line, rank_completions in gathered:
            for text in rank_completions:
                escaped = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
                print("[%d] %s -> %s" % (index, prompts[index], escaped))
                index += 1
        for rank_line, _ in gathered:
            print(rank_line)
    dist.destroy_process_group()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--layers", type=int, default=12)
    j = sub.add_parser("job")
    j.add_argument("--model_dir", required=True)
    j.add_argument("--prompts", required=True)
    j.add_argument("--batch_size", type=int, default=8)
    j.add_argument("--max_new_tokens", type=int, default=32)
    j.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    return make(args) if args.command == "make" else job(args)


if __name__ == "__main__":
    sys.exit(main())
