"""The training, validation and test splits of a ``datalist.json`` written by ``python -m prepare``."""

from __future__ import annotations

import logging
from pathlib import Path

from monai.data import load_decathlon_datalist

from .errors import SettingsError

logger = logging.getLogger(__name__)


def load_split(dataset_dir: str | Path, key: str) -> list[dict[str, str]]:
    """The ``key`` split of ``dataset_dir/datalist.json``, with absolute paths.

    Raises:
        SettingsError: no datalist.json, the split is absent or empty, or a listed file is missing.
    """
    path = Path(dataset_dir) / "datalist.json"
    if not path.is_file():
        raise SettingsError(
            f"{path}: no such file. Set dataset_dir to a folder made by `python -m prepare` "
            f"(the demo set: python -m prepare synthetic --out {dataset_dir})"
        )
    try:
        items = load_decathlon_datalist(path, is_segmentation=True, data_list_key=key, base_dir=path.parent)
    except ValueError as error:  # MONAI's message for a missing split
        raise SettingsError(f"{path}: no '{key}' split, which this config needs; use a dataset_dir that has one") from error
    if not items:
        raise SettingsError(f"{path}: the '{key}' split is empty; write it again with `python -m prepare`")
    missing = [f for item in items for f in item.values() if isinstance(f, str) and not Path(f).is_file()]
    if missing:
        raise SettingsError(f"{path}: {len(missing)} listed files are missing, e.g. {missing[0]}")
    logger.info("%s: %d cases in '%s'", path, len(items), key)
    return items
