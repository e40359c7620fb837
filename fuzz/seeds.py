#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into OUT/<target>/, from the project's fixtures.

Usage: fuzz/seeds.py OUT
"""
import json
import pathlib
import shutil
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def safetensors(tensors, metadata=None, extra=b""):
    """A file as the writer makes it: tensors is [(name, dtype, shape, data bytes)]."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data + extra


def u64(n):
    return struct.pack("<Q", n)


def codec_string(s):
    return u64(len(s)) + s


def main(out):
    out = pathlib.Path(out)
    targets = {t: out / t for t in ("config_yaml", "config_json", "safetensors_header", "tokenizer", "tokenizer_json",
                                        "object_codec", "batch_file", "jinja")}
    for d in targets.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    fixtures = [ROOT / "tests/config/fixtures", ROOT / "configs"]
    for directory in fixtures:
        for f in directory.iterdir():
            target = {".yaml": "config_yaml", ".json": "config_json"}.get(f.suffix)
            if target:
                shutil.copy(f, targets[target] / f"{directory.name}-{f.name}")

    st = targets["safetensors_header"]
    (st / "two.safetensors").write_bytes(safetensors(
        [("h.0.attn.weight", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), ("wte", "BF16", [3], b"\x80\x3f" * 3)],
        metadata={"format": "pt"}))
    (st / "all-dtypes.safetensors").write_bytes(safetensors(
        [(d, d, [1], b"\x01" * n) for d, n in
         [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1), ("U8", 1),
          ("BOOL", 1)]]))
    (st / "empty.safetensors").write_bytes(safetensors([("none", "F32", [0, 3], b""), ("scalar", "F32", [], b"\0" * 4)]))

    # The 256 byte symbols of the bundled GPT-2 vocabulary and the merges among them.
    encoder = json.loads((ROOT / "data/gpt2/encoder.json").read_text(encoding="utf-8"))
    vocab = {token: i for token, i in encoder.items() if i < 400}
    merges = [m for m in (ROOT / "data/gpt2/vocab.bpe").read_text(encoding="utf-8").splitlines()[1:200]
              if all(t in vocab for t in m.split(" ") + [m.replace(" ", "")])]
    tok = targets["tokenizer"]
    merges_text = "#version: 0.2\n" + "\n".join(merges) + "\n"
    (tok / "gpt2-small").write_bytes(json.dumps(vocab).encode() + b"\0" + merges_text.encode())
    (tok / "bytes-only").write_bytes(
        json.dumps({t: i for t, i in vocab.items() if i < 256}).encode() + b"\0#version: 0.2\n")

    # tokenizer.json: the sentencepiece style of tests/models/tokenizer_fixture.h, and GPT-2's
    # byte-level vocabulary slice above in the tokenizers library's layout.
    tj = targets["tokenizer_json"]
    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    sp_vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    sp_vocab.update({"\u2581": 259, "a": 260, "b": 261, "ab": 262, "\u2581ab": 263})
    specials = [{"id": i, "content": c, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    sentencepiece = {
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True, "vocab": sp_vocab,
                  "merges": ["a b", "\u2581 ab"]},
        "added_tokens": specials,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    }
    (tj / "sentencepiece.json").write_text(json.dumps(sentencepiece), encoding="utf-8")
    byte_level = {
        "model": {"type": "BPE", "vocab": vocab, "merges": merges},
        "added_tokens": [],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "post_processor": {"type": "ByteLevel"},
        "decoder": {"type": "ByteLevel"},
    }
    (tj / "byte-level.json").write_text(json.dumps(byte_level), encoding="utf-8")

    # First byte: the type the target decodes (see fuzz/object_codec.cpp); then the encoding.
    oc = targets["object_codec"]
    (oc / "map").write_bytes(b"\0" + u64(1) + codec_string(b"a") + u64(2) + b"\1" + struct.pack("<d", 1.5) + b"\0")
    (oc / "pairs").write_bytes(b"\1" + u64(1) + struct.pack("<i", -2) + codec_string(b"xyz"))
    (oc / "bools").write_bytes(b"\2" + u64(3) + b"\1\0\1")
    # Chat templates: the real and written ones the tests render, and the tests' snippets.
    chat = ROOT / "tests/models/data/chat"
    for f in (chat / "templates").iterdir():
        shutil.copy(f, targets["jinja"] / f.name)
    for name, snippet in json.loads((chat / "cases.json").read_text(encoding="utf-8"))["snippets"].items():
        (targets["jinja"] / f"snippet-{name}.jinja").write_text(snippet["source"], encoding="utf-8")

    cbor = bytes.fromhex("a2") + b"\x66prompt" + b"\x65a dog" + b"\x66scores" + bytes.fromhex("8301f94100f6")
    (oc / "json").write_bytes(b"\3" + codec_string(cbor))

    # First byte: even for an OpenAI batch file, odd for a prompts file (see fuzz/batch_file.cpp).
    bf = targets["batch_file"]
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/completions",
         "body": {"model": "m", "prompt": "Once upon", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9, "top_k": 40,
                  "seed": 3, "stop": ["\n", "END"], "n": 1, "user": "u", "presence_penalty": 0}},
        {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
         "body": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \u00e9"}],
                  "max_completion_tokens": 5, "tools": [], "chat_template_kwargs": {"enable_thinking": False}}},
        {"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": ["one"], "n": 2}},
    ]
    batch = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n\n{broken\n"
    (bf / "mixed.jsonl").write_bytes(b"\0" + batch.encode())
    (bf / "prompts.txt").write_bytes(b"\1" + "a dog\n\n  \nthe quick brown fox\r\ncaf\u00e9\n".encode())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
