"""Values typed on the command line arrive as strings: ``fire`` parses numbers and ``True``,
not ``true``, ``null`` or a device. Here they get the types their defaults have, so that the
configs' expressions see those: on/off settings (:data:`FLAGS`) typed as ``true``/``false``
become booleans, ``null`` becomes None where a setting may be off (:data:`NULLABLE`), and a
device name (``cpu``, ``cuda:1``, as MONAI Label's train task sends it too) a ``torch.device``.
"""

from __future__ import annotations

import torch
from monai.bundle import ConfigParser

from .setting_rules import device_problem

# on/off settings: the command line gives `--compile true` as the string "true"
FLAGS = ("compile", "main_process", "resume", "publish_model")
# settings that `null` turns off: the command line gives `--ckpt_path null` as the string "null"
NULLABLE = ("ckpt_path", "cache_dir")


def read_typed_values(config: ConfigParser) -> list[str]:
    """Gives the settings typed as strings the types of their defaults; returns one problem
    for a device that is no device name."""
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
        problem = device_problem(raw, config)
        if problem:
            return [f"device {raw}: {problem}"]
        config["device"] = torch.device(raw)
    return []
