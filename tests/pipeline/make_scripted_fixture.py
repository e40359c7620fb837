"""Writes the TorchScript fixture for the pipeline tests: a scripted nn.Sequential, as users get
it from Python. Run with Debian's /usr/bin/python3 (python3-torch)."""
import sys

import torch

torch.manual_seed(7)
model = torch.nn.Sequential(
    torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)
)
torch.jit.script(model.eval()).save(sys.argv[1])
