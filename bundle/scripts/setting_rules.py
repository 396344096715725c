"""The rules the settings' values must follow: each takes (value, the running config) and
returns a problem in words, naming the fix, or None. :func:`scripts.settings.check` applies
:data:`RULES` to the settings each config has, after the command line's strings got their
types (:mod:`scripts.setting_types`).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from .nonfinite import non_finite_names


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _positive_int(example: int) -> Callable[[Any, ConfigParser], str | None]:
    def rule(value: Any, _: ConfigParser) -> str | None:
        return None if _is_int(value) and value > 0 else f"must be a positive integer, e.g. {example}"

    return rule


def _spatial_size(value: Any, _: ConfigParser) -> str | None:
    if _is_int(value) and value > 0 and value % 32 == 0:
        return None
    return "must be a positive multiple of 32 (the network halves the image 5 times), e.g. 256"


def _num_classes(value: Any, _: ConfigParser) -> str | None:
    if _is_int(value) and value > 0:
        return None
    return "must be 1 (binary lesion masks, sigmoid) or the number of classes including background (softmax)"


def _zero_or_more(zero: str, more: str) -> Callable[[Any, ConfigParser], str | None]:
    """A count where 0 has a meaning of its own (``zero``)."""

    def rule(value: Any, _: ConfigParser) -> str | None:
        return None if _is_int(value) and value >= 0 else f"must be 0 ({zero}) or {more}"

    return rule


def _learning_rate(value: Any, _: ConfigParser) -> str | None:
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return None
    return "must be a positive number, e.g. 0.001"


def _val_interval(value: Any, config: ConfigParser) -> str | None:
    if not (_is_int(value) and value > 0):
        return "must be a positive integer, e.g. 1"
    num_epochs = config.get_parsed_content("num_epochs") if "num_epochs" in config else None
    if _is_int(num_epochs) and 0 < num_epochs < value:
        return f"is above num_epochs {num_epochs}: no validation would run and model.pt would never be written"
    return None


def device_problem(value: Any, _: ConfigParser) -> str | None:
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        return "is not a device name; use cpu, cuda, cuda:N or mps"
    try:
        torch.empty(1, device=device)
    except (AssertionError, RuntimeError) as error:  # torch's messages for devices it lacks
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"is not available on this machine ({reason}); use --device cpu"
    return None


def _flag(value: Any, _: ConfigParser) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _compile(value: Any, config: ConfigParser) -> str | None:
    if _flag(value, config) or not value:
        return _flag(value, config)
    try:
        device = torch.device(config.get_parsed_content("device") if "device" in config else "cpu")
    except (RuntimeError, TypeError, ValueError):
        return None  # the device's own rule names the problem
    # inductor writes its kernels in C++ (built with the system compiler) on the CPU and in Triton on GPUs
    if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++")):
        return "needs a C++ compiler on the CPU (torch.compile builds its kernels with it): install g++, or use --compile false"
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "needs Triton on a GPU (pip install triton), or use --compile false"
    return None


def _output_dir(value: Any, _: ConfigParser) -> str | None:
    folder = Path(str(value))
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder; choose another output_dir"
    try:  # what counts is whether a file can be made there, whoever we run as
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"{existing} is not writable ({error.strerror}); choose another output_dir"
    return None


def _ckpt_path(value: Any, config: ConfigParser) -> str | None:
    if value in (None, ""):
        return None
    from networks import load_reference_weights  # the network package, as the configs import it

    path = Path(str(value))
    if not path.is_file():
        return "no such file; give the weights to start from (model.pt of a run, or the reference release's)"
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch names what it could not read
        return f"cannot be read as weights ({type(error).__name__}: {str(error).splitlines()[0]})"
    if "network_def" in config:
        try:
            load_reference_weights(copy.deepcopy(config.get_parsed_content("network_def")), weights)
        except ValueError as error:
            detail = " ".join(str(error).split("\n", 1)[-1].split())
            return f"does not fit the network (check num_classes and pvm_groups): {detail}"
    if non_finite_names(weights):
        return "holds NaN or infinite weights (saved by a run that diverged?); use another checkpoint"
    return None


RULES: dict[str, Callable[[Any, ConfigParser], str | None]] = {
    "spatial_size": _spatial_size,
    "num_classes": _num_classes,
    "batch_size": _positive_int(8),
    "num_epochs": _positive_int(300),
    "learning_rate": _learning_rate,
    "val_interval": _val_interval,
    "num_workers": _zero_or_more("load in the main process", "a positive integer"),
    "cpu_lanes": _zero_or_more("one lane per torch thread", "1 (one pass) or more lanes"),
    "device": device_problem,
    "output_dir": _output_dir,
    "ckpt_path": _ckpt_path,
    "compile": _compile,
    "main_process": _flag,
    "resume": _flag,
    "publish_model": _flag,
}
