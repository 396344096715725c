"""The settings of each bundle config, and the check that runs before anything else.

Each config's ``initialize`` list starts with ``$scripts.settings.check('<config>')``
(``initialize`` is what ``python -m monai.bundle run`` evaluates before the run itself):

1. every top-level key of the running config must be one the named configs define
   (``configs/<config>.yaml``). A key typed on the command line, in an ``--args_file`` or in
   an extra config file that they do not define stops the run with the closest known keys,
   or with the config that does define it. Keys are read from the configs themselves, so a
   key added to a config is accepted at once. Nested overrides (``--train#trainer#max_epochs``)
   of a key the config defines pass, as do the ids MONAI's experiment tracking adds.
2. values typed on the command line arrive as strings (``fire`` parses numbers and
   ``True``, not ``true``, ``null`` or a device): on/off settings (:data:`FLAGS`) typed as
   ``true``/``false`` become booleans, ``null`` becomes None where a setting may be off
   (:data:`NULLABLE`), and a device name (``cpu``, ``cuda:1``, as MONAI Label's train task
   sends it too) a ``torch.device``, so that the configs' expressions see the types their
   defaults have. Then the values of the settings in :data:`RULES` are checked (types,
   ranges, the device, the folders, the checkpoint), every problem named with its key and
   the fix; a setting whose expression fails is named with the error.

The lists of files are not made here: a config must parse, and ``initialize`` pass, before
its data exist (MONAI's ``create_workflow`` runs ``initialize``). :func:`check_data`, the
first expression of each config's ``run``, makes them, so that a missing split or file
stops the run before any image is read.

The settings a user is meant to change are the keys under the line
``# ---- settings users override ----`` of each config, up to the next blank line, each with
its meaning in the comment after it. ``python -m scripts.settings_table`` (from the bundle
root) writes them as the table in ``docs/README.md``.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import inspect
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import torch
import yaml
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver
from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS

from .datalist import DeferredList
from .errors import SettingsError, real_error, report_errors_plainly
from .nonfinite import non_finite_names

logger = logging.getLogger(__name__)

BUNDLE_DIR = Path(__file__).resolve().parents[1]
CONFIG_DIR = BUNDLE_DIR / "configs"
README = BUNDLE_DIR / "docs" / "README.md"  # holds the table of the documented settings
SETTINGS_HEADER = "# ---- settings users override ----"
# ids MONAI adds to a running config: the metadata, and with `--tracking mlflow` its settings
# (MONAI then always sets save_execute_config)
META_ID = "_meta_"
TRACKING_IDS = frozenset({"save_execute_config"}.union(*(s["configs"] for s in DEFAULT_EXP_MGMT_SETTINGS.values())))


def config_names() -> list[str]:
    """The bundle's configs, e.g. ``['evaluate', 'inference', 'multi_gpu_train', 'train']``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_keys(name: str) -> set[str]:
    """The top-level keys ``configs/<name>.yaml`` defines (``train#sampler`` counts as ``train``)."""
    content = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) or {}
    return {ReferenceResolver.split_id(str(key))[0] for key in content}


def documented_settings(name: str) -> dict[str, tuple[str, str]]:
    """The settings block of ``configs/<name>.yaml``: key -> (default as written, meaning)."""
    lines = (CONFIG_DIR / f"{name}.yaml").read_text().splitlines()
    if SETTINGS_HEADER not in lines:
        return {}
    settings = {}
    for line in lines[lines.index(SETTINGS_HEADER) + 1 :]:
        if not line.strip():
            break
        # `key: value  # meaning`; a '#' inside a value (an id) has no space before it
        match = re.fullmatch(r"(\w+):\s*(.*?)\s*(?:\s#\s*(.*))?", line)
        if match:
            settings[match[1]] = (match[2], match[3] or "")
    return settings


def unknown_key_problems(given: set[str], configs: list[str]) -> list[str]:
    """One line for each key of ``given`` (a running config's) that ``configs`` do not define."""
    known = set().union(*(config_keys(name) for name in configs))
    monai_ids = {META_ID} | (TRACKING_IDS if "save_execute_config" in given else set())
    where = " + ".join(f"configs/{name}.yaml" for name in configs)
    problems = []
    for key in sorted(given - known - monai_ids):
        elsewhere = [f"configs/{n}.yaml" for n in config_names() if n not in configs and key in config_keys(n)]
        if elsewhere:
            problems.append(f"{key}: not a setting of {where}, only of {', '.join(elsewhere)}; remove it")
            continue
        close = difflib.get_close_matches(key, sorted(known - {"imports"}), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else f"the settings are listed in {README.relative_to(BUNDLE_DIR)}"
        problems.append(f"{key}: no such setting in {where}; {hint}")
    return problems


# ---- value rules: (value, the running config) -> a problem, or None ----


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


def _device(value: Any, _: ConfigParser) -> str | None:
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
    "device": _device,
    "output_dir": _output_dir,
    "ckpt_path": _ckpt_path,
    "compile": _compile,
    "main_process": _flag,
    "resume": _flag,
    "publish_model": _flag,
}
# on/off settings: the command line gives `--compile true` as the string "true"
FLAGS = ("compile", "main_process", "resume", "publish_model")
# settings that `null` turns off: the command line gives `--ckpt_path null` as the string "null"
NULLABLE = ("ckpt_path", "cache_dir")


def _read_typed_values(config: ConfigParser) -> list[str]:
    """Gives the settings typed as strings the types of their defaults (see the module's
    docstring); returns one problem for a device that is no device name."""
    for key in FLAGS:
        raw = config.get(key)
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            config[key] = raw.strip().lower() == "true"
    for key in NULLABLE:
        raw = config.get(key)
        if isinstance(raw, str) and raw.strip().lower() in ("null", "none"):
            config[key] = None
    raw = config.get("device")
    if isinstance(raw, (str, int)) and not (isinstance(raw, str) and raw.startswith(("$", "@", "%"))):
        problem = _device(raw, config)
        if problem:
            return [f"device {raw}: {problem}"]
        config["device"] = torch.device(raw)
    return []


def _running_config() -> ConfigParser:
    """The ConfigParser evaluating the current expression.

    MONAI hands an expression no handle to its config, and only the running config shows
    which keys the command line, an args file or an extra config file added.
    """
    frame = inspect.currentframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, ConfigParser):
            return owner
        frame = frame.f_back
    raise RuntimeError("scripts.settings.check is meant to run from a bundle config's `initialize` list")


def _dataset_data_ids(config: ConfigParser) -> list[str]:
    """The ``data`` of each dataset: ``dataset#data`` and one level down (``train#dataset#data``)."""
    sep = ReferenceResolver.sep
    content = config.get()
    sections = [content] + [value for value in content.values() if isinstance(value, dict)]
    prefixes = [""] + [f"{key}{sep}" for key, value in content.items() if isinstance(value, dict)]
    return [
        f"{prefix}dataset{sep}data"
        for prefix, section in zip(prefixes, sections)
        if isinstance(section.get("dataset"), dict) and "data" in section["dataset"]
    ]


def check(*configs: str) -> None:
    """Checks the running config against ``configs/<configs>.yaml`` before anything runs.

    Raises:
        SettingsError: one line per unknown key, else one line per bad value (naming the key
            and the fix).
    """
    report_errors_plainly()
    config = _running_config()
    problems = unknown_key_problems(set(config.get()), list(configs))
    if problems:
        raise SettingsError("\n".join(problems))
    problems = _read_typed_values(config)
    if problems:  # the other settings' expressions read the device
        raise SettingsError("\n".join(problems))
    for key, rule in RULES.items():
        if key not in config:
            continue
        try:
            value = config.get_parsed_content(key)
        except Exception as error:  # an expression typed on the command line, or one reading such a value
            problems.append(f"{key}: cannot be evaluated ({type(real_error(error)).__name__}: {real_error(error)})")
            continue
        problem = rule(value, config)
        if problem:
            problems.append(f"{key} {value}: {problem}")
    if problems:
        raise SettingsError("\n".join(problems))
    logger.info("settings checked against %s", ", ".join(f"configs/{name}.yaml" for name in configs))


def check_data() -> None:
    """Lists the files of every dataset of the running config, before the run reads any.

    The first expression of each config's ``run``: the datalists are made lazily
    (:class:`scripts.datalist.DeferredList`) so that a config parses before its data exist,
    and this makes them, so that a missing split or an unreadable file stops the run before
    anything is trained or written.

    A list given in place of a datalist (MONAI Label's train task gives ``train#dataset#data``
    and ``validate#dataset#data`` from its datastore) must hold cases, except the validation
    one: without validation cases, training keeps the last epoch's weights.

    Raises:
        SettingsError: the first list that cannot be made, naming the file and the fix, or
            an empty one.
    """
    config = _running_config()
    for data_id in _dataset_data_ids(config):
        data = config.get_parsed_content(data_id)
        if isinstance(data, DeferredList):
            try:
                data.items()
            except (OSError, ValueError) as error:
                raise SettingsError(str(error)) from error
        elif len(data) == 0 and not data_id.startswith(f"validate{ReferenceResolver.sep}"):
            raise SettingsError(
                f"{data_id}: no cases, nothing to run on. In MONAI Label: save final labels for some images "
                "before training; on the command line: leave it to dataset_dir (a folder made by `python -m prepare`)"
            )
