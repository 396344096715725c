"""The training, validation and test splits of a ``datalist.json`` written by ``python -m prepare``."""

from __future__ import annotations

import logging
from pathlib import Path

from monai.data import load_decathlon_datalist

logger = logging.getLogger(__name__)


def load_split(dataset_dir: str | Path, key: str) -> list[dict[str, str]]:
    """The ``key`` split of ``dataset_dir/datalist.json``, with absolute paths.

    Raises:
        FileNotFoundError: no datalist.json, or a listed file is missing.
        ValueError: the split is absent or empty.
    """
    path = Path(dataset_dir) / "datalist.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file. Set dataset_dir to a folder made by `python -m prepare` "
            f"(the demo set: python -m prepare synthetic --out {dataset_dir})"
        )
    items = load_decathlon_datalist(path, is_segmentation=True, data_list_key=key, base_dir=path.parent)
    if not items:
        raise ValueError(f"{path}: the '{key}' split is empty")
    missing = [f for item in items for f in item.values() if isinstance(f, str) and not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} listed files are missing, e.g. {missing[0]}")
    logger.info("%s: %d cases in '%s'", path, len(items), key)
    return items
