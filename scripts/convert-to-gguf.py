#!/usr/bin/python3
"""Converts a checkpoint directory in Hugging Face layout (config.json, model.safetensors or a
sharded index, and a GPT-2 byte-level BPE tokenizer: vocab.json + merges.txt or encoder.json +
vocab.bpe) into one GGUF file that llama.cpp loads, so llama.cpp can be measured on the very
weights our models run.

  convert-to-gguf.py MODEL_DIR OUT.gguf [--dtype f32|f16|bf16] [--overwrite]

model_type gpt2 becomes llama.cpp's "gpt2" architecture, model_type llama its "llama" one.
--dtype is the type of the matrices (embeddings included); norms and biases stay float32, as
llama.cpp expects. Written from the GGUF specification (ggml's docs/gguf.md) and the key and
tensor names llama.cpp reads; run it with Debian's /usr/bin/python3 (python3-numpy).

Two layout changes are not mere renames:
  * GPT-2 stores its projections as Conv1D weights [in, out]; GGUF wants [out, in] rows.
  * Hugging Face Llama checkpoints rotate query/key dimensions i and i + head_dim/2 together
    ("rotate_half"); llama.cpp's llama architecture rotates adjacent pairs (2i, 2i+1), so the
    rows of q_proj and k_proj are reordered within each head.
The output is written to a temporary file beside OUT and renamed into place when complete.
"""
import argparse
import json
import os
import struct
import sys
import tempfile

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# GGUF metadata value types (the specification's gguf_metadata_value_type).
UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9
# ggml tensor types and llama.cpp's file types (general.file_type) for each output dtype.
TENSOR_TYPES = {"f32": (0, 4, 0), "f16": (1, 2, 1), "bf16": (30, 2, 32)}  # (ggml type, bytes, file type)
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3


class ConversionError(Exception):
    """A problem with the input the user can fix; printed without a traceback."""


def fail(path, message):
    raise ConversionError("%s: %s" % (path, message))


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        fail(path, "not found")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(path, "is not valid JSON (%s)" % e)


class SafetensorsTensors:
    """The tensors of model.safetensors or of the shards an index names, read on demand as
    float32 arrays (F32, F16 and BF16 are accepted)."""

    SOURCE_TYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}

    def __init__(self, model_dir):
        single = os.path.join(model_dir, "model.safetensors")
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(single):
            files = [single]
        elif os.path.exists(index):
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict):
                fail(index, "has no \"weight_map\" object")
            files = sorted({os.path.join(model_dir, shard) for shard in weight_map.values()})
        else:
            fail(model_dir, "holds neither model.safetensors nor model.safetensors.index.json")
        self.entries = {}
        for path in files:
            for name, entry in self._header(path).items():
                self.entries[name] = (path, entry)

    @staticmethod
    def _header(path):
        try:
            with open(path, "rb") as f:
                prefix = f.read(8)
                if len(prefix) < 8:
                    fail(path, "is shorter than the 8-byte safetensors header length")
                (length,) = struct.unpack("<Q", prefix)
                header = json.loads(f.read(length))
        except FileNotFoundError:
            fail(path, "not found (named by the checkpoint index)")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            fail(path, "has a safetensors header that is not valid JSON (%s)" % e)
        header.pop("__metadata__", None)
        for entry in header.values():
            entry["data_start"] = 8 + length
        return header

    def __contains__(self, name):
        return name in self.entries

    def shape(self, name):
        return list(self.entries[name][1]["shape"])

    def array(self, name):
        path, entry = self.entries[name]
        source = self.SOURCE_TYPES.get(entry["dtype"])
        if source is None:
            fail(path, "tensor %s is stored as %s; accepted: %s" % (name, entry["dtype"], ", ".join(self.SOURCE_TYPES)))
        begin, end = entry["data_offsets"]
        values = np.fromfile(path, dtype=source, count=(end - begin) // np.dtype(source).itemsize,
                             offset=entry["data_start"] + begin)
        if entry["dtype"] == "BF16":  # bfloat16 is the upper half of a float32
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(np.float32).reshape(entry["shape"])


def encode_as(values, dtype):
    """The bytes of float32 `values` in the output dtype (bfloat16: rounded to nearest even)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "f32":
        return values.tobytes()
    if dtype == "f16":
        return values.astype(np.float16).tobytes()
    bits = values.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[np.isnan(values)] = 0x7FC0
    return rounded.tobytes()


def read_gpt2_tokenizer(model_dir):
    """(tokens by id, merges) from vocab.json + merges.txt or encoder.json + vocab.bpe."""
    for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
        vocab_path, merges_path = os.path.join(model_dir, vocab_name), os.path.join(model_dir, merges_name)
        if os.path.exists(vocab_path) and os.path.exists(merges_path):
            break
    else:
        fail(model_dir, "has no GPT-2 tokenizer files: expected vocab.json + merges.txt or encoder.json + vocab.bpe")
    vocab = read_json(vocab_path)
    if not isinstance(vocab, dict):
        fail(vocab_path, "must be a JSON object mapping each token to its id")
    tokens = [None] * len(vocab)
    for token, token_id in vocab.items():
        if not isinstance(token_id, int) or not 0 <= token_id < len(vocab) or tokens[token_id] is not None:
            fail(vocab_path, "token %r has id %r; ids must be 0..%d, each used once" % (token, token_id, len(vocab) - 1))
        tokens[token_id] = token
    with open(merges_path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    merges = [line for line in lines if line and not line.startswith("#version")]
    for number, line in enumerate(lines, 1):
        if line and not line.startswith("#version") and len(line.split(" ")) != 2:
            fail(merges_path, "line %d is %r; a merge is two tokens separated by one space" % (number, line))
    return tokens, merges


def config_int(config, path, key, default=None):
    value = config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        fail(path, "key \"%s\" must be a positive integer, got %r" % (key, value))
    return value


def gpt2_plan(config, path, weights):
    """GGUF metadata and [(gguf name, numpy array loader, gguf shape)] for a GPT-2 checkpoint."""
    d = config_int(config, path, "n_embd", 768)
    layers = config_int(config, path, "n_layer", 12)
    inner = config.get("n_inner") or 4 * d
    metadata = {"gpt2.context_length": (UINT32, config_int(config, path, "n_positions", 1024)),
                "gpt2.embedding_length": (UINT32, d), "gpt2.feed_forward_length": (UINT32, inner),
                "gpt2.block_count": (UINT32, layers),
                "gpt2.attention.head_count": (UINT32, config_int(config, path, "n_head", 12)),
                "gpt2.attention.layer_norm_epsilon": (FLOAT32, float(config.get("layer_norm_epsilon", 1e-5)))}
    prefix = "transformer." if "transformer.wte.weight" in weights else ""
    renames = [("wte.weight", "token_embd.weight", False), ("wpe.weight", "position_embd.weight", False),
               ("ln_f.weight", "output_norm.weight", False), ("ln_f.bias", "output_norm.bias", False)]
    block = [("ln_1", "attn_norm", False), ("attn.c_attn", "attn_qkv", True), ("attn.c_proj", "attn_output", True),
             ("ln_2", "ffn_norm", False), ("mlp.c_fc", "ffn_up", True), ("mlp.c_proj", "ffn_down", True)]
    for i in range(layers):
        for ours, theirs, conv1d in block:
            renames.append(("h.%d.%s.weight" % (i, ours), "blk.%d.%s.weight" % (i, theirs), conv1d))
            renames.append(("h.%d.%s.bias" % (i, ours), "blk.%d.%s.bias" % (i, theirs), False))
    plan = []
    for ours, theirs, conv1d in renames:
        name = prefix + ours
        transform = (lambda a: a.T) if conv1d else (lambda a: a)
        plan.append((theirs, name, transform, weights.shape(name)[::-1] if conv1d else weights.shape(name)))
    if "lm_head.weight" in weights and not config.get("tie_word_embeddings", True):
        plan.append(("output.weight", "lm_head.weight", lambda a: a, weights.shape("lm_head.weight")))
    return "gpt2", metadata, plan


def rotate_half_to_adjacent_pairs(heads):
    """Reorders rows (dim 0) within each of `heads` heads from the pairing (i, i + half) to
    (2i, 2i + 1): row i goes to 2i, row i + half to 2i + 1."""
    def transform(a):
        head_dim = a.shape[0] // heads
        return a.reshape(heads, 2, head_dim // 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
    return transform


def llama_plan(config, path, weights):
    d = config_int(config, path, "hidden_size")
    heads = config_int(config, path, "num_attention_heads")
    kv_heads = config_int(config, path, "num_key_value_heads", heads)
    head_dim = config.get("head_dim") or d // heads
    layers = config_int(config, path, "num_hidden_layers")
    for key in ("rope_scaling", "sliding_window"):
        if config.get(key) is not None:
            fail(path, "key \"%s\" is %r; this converter handles plain rotary Llama models only" % (key, config[key]))
    metadata = {"llama.context_length": (UINT32, config_int(config, path, "max_position_embeddings", 2048)),
                "llama.embedding_length": (UINT32, d),
                "llama.feed_forward_length": (UINT32, config_int(config, path, "intermediate_size")),
                "llama.block_count": (UINT32, layers), "llama.attention.head_count": (UINT32, heads),
                "llama.attention.head_count_kv": (UINT32, kv_heads),
                "llama.attention.key_length": (UINT32, head_dim), "llama.attention.value_length": (UINT32, head_dim),
                "llama.rope.dimension_count": (UINT32, head_dim),
                "llama.rope.freq_base": (FLOAT32, float(config.get("rope_theta", 10000.0))),
                "llama.attention.layer_norm_rms_epsilon": (FLOAT32, float(config.get("rms_norm_eps", 1e-6))),
                "llama.vocab_size": (UINT32, config_int(config, path, "vocab_size"))}
    same = lambda a: a  # noqa: E731
    renames = [("model.embed_tokens.weight", "token_embd.weight", same), ("model.norm.weight", "output_norm.weight", same)]
    if "lm_head.weight" in weights:
        renames.append(("lm_head.weight", "output.weight", same))
    for i in range(layers):
        p, b = "model.layers.%d." % i, "blk.%d." % i
        for ours, theirs, transform in (
                ("input_layernorm", "attn_norm", same), ("post_attention_layernorm", "ffn_norm", same),
                ("self_attn.q_proj", "attn_q", rotate_half_to_adjacent_pairs(heads)),
                ("self_attn.k_proj", "attn_k", rotate_half_to_adjacent_pairs(kv_heads)),
                ("self_attn.v_proj", "attn_v", same), ("self_attn.o_proj", "attn_output", same),
                ("mlp.gate_proj", "ffn_gate", same), ("mlp.up_proj", "ffn_up", same), ("mlp.down_proj", "ffn_down", same)):
            renames.append((p + ours + ".weight", b + theirs + ".weight", transform))
            if p + ours + ".bias" in weights:
                renames.append((p + ours + ".bias", b + theirs + ".bias", transform))
    return "llama", metadata, [(theirs, ours, t, weights.shape(ours)) for ours, theirs, t in renames]


ARCHITECTURES = {"gpt2": gpt2_plan, "llama": llama_plan}


def tokenizer_metadata(config, config_path, model_dir, vocab_size):
    tokens, merges = read_gpt2_tokenizer(model_dir)
    if len(tokens) != vocab_size:
        fail(model_dir, "the tokenizer has %d tokens but the model's embedding has %d rows; llama.cpp needs them equal"
             % (len(tokens), vocab_size))
    eos = config.get("eos_token_id", len(tokens) - 1)
    bos = config.get("bos_token_id", eos)
    for key, value in (("bos_token_id", bos), ("eos_token_id", eos)):
        if not isinstance(value, int) or not 0 <= value < len(tokens):
            fail(config_path, "key \"%s\" must be one token id below %d, got %r" % (key, len(tokens), value))
    types = [TOKEN_NORMAL] * len(tokens)
    for special in {bos, eos}:
        types[special] = TOKEN_CONTROL
    return {"tokenizer.ggml.model": (STRING, "gpt2"), "tokenizer.ggml.pre": (STRING, "gpt-2"),
            "tokenizer.ggml.tokens": (ARRAY, (STRING, tokens)), "tokenizer.ggml.token_type": (ARRAY, (INT32, types)),
            "tokenizer.ggml.merges": (ARRAY, (STRING, merges)),
            "tokenizer.ggml.bos_token_id": (UINT32, bos), "tokenizer.ggml.eos_token_id": (UINT32, eos),
            "tokenizer.ggml.add_bos_token": (BOOL, False)}


def pack_string(text):
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


SCALARS = {UINT32: "<I", INT32: "<i", FLOAT32: "<f", BOOL: "<?"}


def pack_value(kind, value):
    if kind == STRING:
        return pack_string(value)
    if kind == ARRAY:
        element_kind, items = value
        head = struct.pack("<IQ", element_kind, len(items))
        if element_kind == STRING:
            return head + b"".join(pack_string(item) for item in items)
        return head + np.asarray(items, dtype=SCALARS[element_kind]).tobytes()
    return struct.pack(SCALARS[kind], value)


def padding(size):
    return b"\0" * (-size % ALIGNMENT)


def write_gguf(out, metadata, tensors, dtype):
    """tensors: [(gguf name, float32 array loader, numpy-order shape)]; matrices in `dtype`."""
    ggml_type, element_bytes, _ = TENSOR_TYPES[dtype]
    infos, offset = [], 0
    for name, _, shape in tensors:
        kind, size = (ggml_type, element_bytes) if len(shape) >= 2 else (0, 4)
        infos.append((name, shape, kind, offset))
        offset += int(np.prod(shape)) * size
        offset += -offset % ALIGNMENT
    header = GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(metadata))
    for key, (kind, value) in metadata.items():
        header += pack_string(key) + struct.pack("<I", kind) + pack_value(kind, value)
    for name, shape, kind, tensor_offset in infos:  # GGUF lists dimensions innermost first
        header += pack_string(name) + struct.pack("<I", len(shape)) + struct.pack("<%dQ" % len(shape), *shape[::-1])
        header += struct.pack("<IQ", kind, tensor_offset)
    out.write(header + padding(len(header)))
    for (name, load, shape), (_, _, kind, _) in zip(tensors, infos):
        values = load()
        if list(values.shape) != list(shape):
            raise ConversionError("tensor %s has shape %s, expected %s" % (name, list(values.shape), shape))
        raw = encode_as(values, "f32" if kind == 0 else dtype)
        out.write(raw + padding(len(raw)))


def convert(model_dir, out_path, dtype, overwrite):
    config_path = os.path.join(model_dir, "config.json")
    config = read_json(config_path)
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        fail(config_path, "model_type %r is not supported; supported: %s" % (model_type, ", ".join(ARCHITECTURES)))
    if os.path.exists(out_path) and not overwrite:
        fail(out_path, "exists; pass --overwrite to replace it")
    weights = SafetensorsTensors(model_dir)
    architecture, metadata, plan = ARCHITECTURES[model_type](config, config_path, weights)
    missing = [ours for _, ours, _, _ in plan if ours not in weights]
    if missing:
        fail(model_dir, "the checkpoint lacks %s (model_type %s)" % (", ".join(missing[:5]), model_type))
    vocab_size = weights.shape(plan[0][1])[0]
    metadata = dict({"general.architecture": (STRING, architecture),
                     "general.name": (STRING, os.path.basename(os.path.abspath(model_dir))),
                     "general.file_type": (UINT32, TENSOR_TYPES[dtype][2]),
                     "general.alignment": (UINT32, ALIGNMENT)},
                    **metadata, **tokenizer_metadata(config, config_path, model_dir, vocab_size))
    tensors = [(theirs, (lambda o=ours, t=transform: t(weights.array(o))), shape)
               for theirs, ours, transform, shape in plan]
    directory = os.path.dirname(os.path.abspath(out_path))
    handle, temporary = tempfile.mkstemp(prefix=".convert-", suffix=".gguf.part", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(handle, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        with os.fdopen(handle, "wb") as out:
            write_gguf(out, metadata, tensors, dtype)
        os.replace(temporary, out_path)
    except BaseException:
        os.unlink(temporary)
        raise
    return len(tensors)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("out")
    parser.add_argument("--dtype", choices=sorted(TENSOR_TYPES), default="f32", help="type of the matrices")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args()
    try:
        count = convert(args.model_dir, args.out, args.dtype, args.overwrite)
    except ConversionError as e:
        print("convert-to-gguf: %s" % e, file=sys.stderr)
        return 2
    print("convert-to-gguf: wrote %s (%d tensors, %s)" % (args.out, count, args.dtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
