"""Test session set-up: without a CUDA GPU, Triton runs kernels in its interpreter. The variable
must be set before anything imports Triton (torch.compile's inductor does), so it is set here,
before any test module loads."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
