"""The project's command lines as the tests start them: each run is a subprocess, as a user
would type it (`python -m monai.bundle ...`, `torchrun ...`, `python -m prepare ...`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundle"
PY = sys.executable
TORCHRUN = str(Path(PY).with_name("torchrun"))
# the demo set's 64x64 images at their own size, small batches, no worker processes
SMALL = ["--spatial_size", "64", "--batch_size", "4", "--num_workers", "0"]
TRAIN = ["--config_file", "configs/train.yaml"]
EVALUATE = ["--config_file", "configs/evaluate.yaml"]
INFER = ["--config_file", "configs/inference.yaml"]


def child_env(**extra: str) -> dict[str, str]:
    # one thread each: the tests' processes share 2 cores, and oversubscribed threads spin
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **extra}


def run(cmd: list[str], cwd: Path = BUNDLE, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env or child_env(), timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def bundle(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run([PY, "-m", "monai.bundle", *args], **kwargs)


def read_picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))
