"""The bundle's configs and the keys they define: a key the running config has and the named
configs do not define is refused with the closest known keys, or with the config that does
define it. Keys are read from the configs themselves, so a key added to a config is accepted
at once; nested overrides (``--train#trainer#max_epochs``) of a defined key pass, as do the
ids MONAI's experiment tracking adds.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml
from monai.bundle.reference_resolver import ReferenceResolver
from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS

BUNDLE_DIR = Path(__file__).resolve().parents[1]
CONFIG_DIR = BUNDLE_DIR / "configs"
SETTINGS_PAGE = BUNDLE_DIR / "docs" / "settings.md"  # holds the table of the documented settings
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
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else f"the settings are listed in {SETTINGS_PAGE.relative_to(BUNDLE_DIR)}"
        )
        problems.append(f"{key}: no such setting in {where}; {hint}")
    return problems
