#!/usr/bin/env python3
"""The reference halves of scripts/gpu-check.sh's anchors: Hugging Face transformers and
accelerate, run on the same weights and inputs as our half (tests/gpu/gpt2_logits, the example
jobs). Needs torch + transformers + safetensors (and accelerate for `pippy`).

  checkpoint DIR VOCAB_DIR LAYERS EMBD HEADS
      a seeded random GPT2LMHeadModel saved as safetensors, with the GPT-2 vocabulary beside it
  logits DIR DEVICE OURS_FP32 OURS_BF16
      transformers' logits for the input ids in our files, in fp32 and bf16, against ours
  greedy DIR DEVICE PROMPTS TOKENS OUT
      transformers' greedy continuation of each prompt, one per line
  pippy LAYERS EMBD HEADS BATCH SEQ ITERATIONS     (under torchrun, one process per stage)
      the facts of accelerate's examples/inference/pippy/gpt2.py with a random GPT-2 of this
      shape: prepare_pippy(split_points="auto"), example input one row, num_chunks = processes
"""
import shutil
import sys
import time

import torch
import transformers


def checkpoint(out, vocab, layers, embd, heads):
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=int(layers), n_embd=int(embd), n_head=int(heads))
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(out, safe_serialization=True)
    for name in ("encoder.json", "vocab.bpe"):
        shutil.copy(f"{vocab}/{name}", out)
    print(f"random GPT-2 ({layers} layers, {embd} wide) in {out}")


def logits(model_dir, device, ours_fp32, ours_bf16):
    from safetensors.torch import load_file
    ours32, ours16 = load_file(ours_fp32), load_file(ours_bf16)
    model = transformers.GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=torch.float32).to(device).eval()
    ids, mask = ours32["input_ids"].to(device), ours32["attention_mask"].to(device)
    with torch.no_grad():
        ref32 = model(ids, attention_mask=mask).logits.float().cpu()
        ref16 = model.to(torch.bfloat16)(ids, attention_mask=mask).logits.float().cpu()
    fp32_error = (ours32["logits"] - ref32).abs().max().item()
    ours_bf16_error = (ours16["logits"] - ref32).abs().max().item()
    their_bf16_error = (ref16 - ref32).abs().max().item()
    agreement = (ours16["logits"].argmax(-1) == ref16.argmax(-1)).float().mean().item()
    print(f"transformers {transformers.__version__} on {device}, logits {tuple(ref32.shape)}: "
          f"fp32 max |ours - theirs| {fp32_error:.2e}; bf16 max error against fp32: ours {ours_bf16_error:.3f}, "
          f"theirs {their_bf16_error:.3f}; bf16 argmax agreement {agreement:.1%}")
    # fp32 differs only by summation order; bf16 rounding may cost us at most twice theirs.
    scale = max(1.0, ref32.abs().max().item())
    return 0 if fp32_error <= 1e-3 * scale and ours_bf16_error <= 2 * their_bf16_error + 1e-2 * scale else 1


def greedy(model_dir, device, prompts, tokens, out):
    model = transformers.GPT2LMHeadModel.from_pretrained(model_dir).to(device).eval()
    tok = transformers.GPT2Tokenizer(vocab_file=f"{model_dir}/encoder.json", merges_file=f"{model_dir}/vocab.bpe")
    with open(out, "w") as f:
        for line in open(prompts).read().splitlines():
            ids = tok(line, return_tensors="pt").input_ids.to(device)
            new = model.generate(ids, max_new_tokens=int(tokens), do_sample=False, pad_token_id=0)[0, ids.shape[1]:]
            f.write(tok.decode(new.cpu()) + "\n")
    return 0


def pippy(layers, embd, heads, batch, seq, iterations):
    import accelerate
    from accelerate import PartialState, prepare_pippy
    batch, seq, iterations = int(batch), int(seq), int(iterations)
    torch.manual_seed(42)
    config = transformers.GPT2Config(n_layer=int(layers), n_embd=int(embd), n_head=int(heads), n_positions=max(1024, seq))
    model = transformers.GPT2ForSequenceClassification(config).eval()
    example = torch.randint(0, config.vocab_size, (1, seq), dtype=torch.int64)
    model = prepare_pippy(model, split_points="auto", example_args=(example,))
    state = PartialState()
    inputs = torch.randint(0, config.vocab_size, (batch, seq), dtype=torch.int64).to(state.device)
    sync = torch.cuda.synchronize if state.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        model(inputs)
    sync()
    first = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(iterations):
            model(inputs)
    sync()
    average = (time.perf_counter() - start) / iterations
    if state.is_last_process:
        print(f"prepare_pippy (accelerate {accelerate.__version__}, torch {torch.__version__}) "
              f"S={state.num_processes} M={state.num_processes} batch={batch}x{seq} on {state.device}: "
              f"first call {first:.4f} s, average of {iterations} {average:.4f} s")
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    commands = {"checkpoint": checkpoint, "logits": logits, "greedy": greedy, "pippy": pippy}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
