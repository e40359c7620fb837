#!/usr/bin/env python3
"""Exports a small seeded text-to-image model as TorchScript, for apps/examples/image_generation.

    /usr/bin/python3 scripts/export-image-model.py image-model.pt                 # denoiser
    /usr/bin/python3 scripts/export-image-model.py image-stages.pt --sequential   # for --pipeline

Run it with Debian's python3-torch. The weights are random (from --seed): the pictures are
noise-like and only show that the route works end to end. Both models take prompts as the
example passes them (docs/image-generation.md): token ids [B, L], each prompt's UTF-8 bytes
plus 1, 0 after its end.

- default: forward(token_ids, seed: int, num_steps: int = 4) -> [B, 3, size, size] in [0, 1]:
  a prompt embedding (mean over its bytes) conditions a few denoising steps of a small conv net,
  starting from noise drawn from the seed.
- --sequential: an nn.Sequential of conv blocks (the pipeline can cut it into stages) whose
  forward(seeded_token_ids) takes [B, 1 + L]: column 0 each row's seed, then its token ids.

The noise comes from an integer hash of (seed, position) computed with tensor operations, so a
prompt's picture depends only on the prompt and the seed: not on the batch it ran in, the rank,
or torch's global generator.
"""
import argparse
from typing import List

import torch
from torch import nn

VOCABULARY = 257  # the 256 byte values plus 1, and 0 for padding


def _mix(x: torch.Tensor, multiplier: int, shift: int) -> torch.Tensor:
    # Every product stays below 2**62: no int64 overflow, so the hash is the same everywhere.
    return (((x >> shift) ^ x) * multiplier) & 0x7FFFFFFF


def hash_noise(seeds: torch.Tensor, shape: List[int]) -> torch.Tensor:
    """Standard normal noise [len(seeds)] + shape; row r depends only on seeds[r]."""
    count = 1
    for extent in shape:
        count = count * extent
    index = torch.arange(2 * count, dtype=torch.int64).unsqueeze(0)
    x = ((seeds.to(torch.int64).unsqueeze(1) & 0x7FFFFFFF) * 40503 + index * 2654435 + 12345) & 0x7FFFFFFF
    x = _mix(_mix(_mix(x, 0x2C1B3C6D, 15), 0x297A2D39, 12), 0x1B873593, 15)
    uniform = (x >> 7).to(torch.float32).add(0.5).div(float(1 << 24))
    first, second = uniform[:, :count], uniform[:, count:]
    normal = torch.sqrt(-2.0 * torch.log(first)) * torch.cos(6.283185307179586 * second)
    return normal.reshape([seeds.size(0)] + shape)


class PromptEmbedding(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.embedding = nn.Embedding(VOCABULARY, width, padding_idx=0)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        mask = (token_ids != 0).to(torch.float32).unsqueeze(-1)
        summed = (self.embedding(token_ids) * mask).sum(1)
        return summed / mask.sum(1).clamp(min=1.0)


class Denoiser(nn.Module):
    def __init__(self, size: int, channels: int = 24, width: int = 32):
        super().__init__()
        self.size = size
        self.prompt = PromptEmbedding(width)
        self.condition = nn.Linear(width, channels)
        self.inp = nn.Conv2d(3, channels, 3, padding=1)
        self.mid = nn.Conv2d(channels, channels, 3, padding=1)
        self.out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, token_ids: torch.Tensor, seed: int, num_steps: int = 4) -> torch.Tensor:
        batch = token_ids.size(0)
        condition = self.condition(self.prompt(token_ids)).unsqueeze(-1).unsqueeze(-1)
        x = hash_noise(torch.full([batch], seed, dtype=torch.int64), [3, self.size, self.size])
        for step in range(num_steps):
            level = 1.0 - step / num_steps
            h = torch.nn.functional.silu(self.inp(x) + condition * level)
            h = torch.nn.functional.silu(self.mid(h))
            x = x - self.out(h) / num_steps
        return torch.sigmoid(x)


class SeededPromptToLatent(nn.Module):
    def __init__(self, latent: int, channels: int, width: int = 32):
        super().__init__()
        self.latent = latent
        self.channels = channels
        self.prompt = PromptEmbedding(width)
        self.condition = nn.Linear(width, channels)

    def forward(self, seeded_token_ids: torch.Tensor) -> torch.Tensor:
        seeds, token_ids = seeded_token_ids[:, 0], seeded_token_ids[:, 1:]
        noise = hash_noise(seeds, [self.channels, self.latent, self.latent])
        return noise + self.condition(self.prompt(token_ids)).unsqueeze(-1).unsqueeze(-1)


def conv_block(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(), nn.Upsample(scale_factor=2.0))


def sequential_model(size: int, channels: int = 16) -> nn.Module:
    upsamplings = 2
    return nn.Sequential(
        SeededPromptToLatent(size >> upsamplings, channels),
        *[conv_block(channels) for _ in range(upsamplings)],
        nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU()),
        nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.Sigmoid()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="where the TorchScript archive is written (.pt)")
    parser.add_argument("--sequential", action="store_true", help="the nn.Sequential for the pipeline route")
    parser.add_argument("--size", type=int, default=64, help="picture width and height (a multiple of 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args()
    if args.size <= 0 or args.size % 4:
        parser.error(f"--size {args.size}: expected a positive multiple of 4")
    torch.manual_seed(args.seed)
    model = sequential_model(args.size) if args.sequential else Denoiser(args.size)
    torch.jit.script(model.eval()).save(args.output)
    print(f"export-image-model: wrote {args.output} ({'sequential' if args.sequential else 'denoiser'}, "
          f"{args.size}x{args.size}, seed {args.seed})")


if __name__ == "__main__":
    main()
