"""The datalist file: its entries, with paths relative to the output folder, and its atomic write."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from networks.files import write_text_atomically
from prepare.errors import PrepareError
from prepare.layouts import Pair
from prepare.splits import SPLIT_KEYS

DATALIST_NAME = "datalist.json"

Datalist = dict[str, list[dict[str, str]]]


def require_free(out: Path, overwrite: bool) -> None:
    """Refuse an output that is not a folder, or that already holds a datalist unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out} exists and is not a folder")
    if not overwrite and (out / DATALIST_NAME).exists():
        raise PrepareError(f"{out / DATALIST_NAME} already exists; pass --overwrite to replace it")


def relative_path(path: Path, out: Path) -> str:
    """``path`` relative to ``out`` with '/' separators, as ``load_decathlon_datalist(base_dir=out)`` expects.

    Both are made absolute without resolving symlinks, because MONAI joins the
    two back lexically (``os.path.normpath``), not through the file system.
    """
    try:
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(out))
    except ValueError as exc:  # Windows: no relative path between two drives
        raise PrepareError(f"cannot refer to {path} relative to {out}: {exc}") from exc
    return Path(relative).as_posix()


def build_datalist(split: Mapping[str, Sequence[Pair]], out: Path) -> Datalist:
    """The datalist of ``split`` for a file in ``out``."""
    return {
        key: [{"image": relative_path(p.image, out), "label": relative_path(p.label, out)} for p in split[key]]
        for key in SPLIT_KEYS
    }


def write_datalist(datalist: Datalist, out: Path, overwrite: bool) -> Path:
    """Write ``out/datalist.json`` so that a reader sees either the old file or the whole new one."""
    out.mkdir(parents=True, exist_ok=True)
    require_free(out, overwrite)  # again: the first check may be minutes old
    return write_text_atomically(out / DATALIST_NAME, json.dumps(datalist, indent=2) + "\n")
