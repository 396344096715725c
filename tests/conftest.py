"""Test session set-up, and the expensive fixtures that tests of several modules share (made once
per session).

Without a CUDA GPU, Triton runs kernels in its interpreter. The variable must be set before
anything imports Triton (torch.compile's inductor does), so it is set here, before any test
module loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from commands import PY, REPO, SMALL, TRAIN, bundle, run


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """20 generated 64x64 cases: 14 training, 2 validation, 4 test."""
    out = tmp_path_factory.mktemp("demo")
    run([PY, "-m", "prepare", "synthetic", "--out", str(out), "--num-images", "20", "--size", "64"], cwd=REPO)
    return out


@pytest.fixture(scope="session")
def trained(demo, tmp_path_factory) -> tuple[Path, str]:
    """A 2-epoch training run on ``demo``: its output_dir and its log. Tests only read it."""
    out = tmp_path_factory.mktemp("train")
    proc = bundle("run", "training", *TRAIN, "--dataset_dir", str(demo), "--output_dir", str(out), "--num_epochs", "2", *SMALL)
    return out, proc.stdout + proc.stderr
