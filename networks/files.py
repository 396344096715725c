"""The files the project reads and how it writes them, shared by ``networks``, ``prepare`` and
the bundle's ``scripts``.

This is the one home of both concerns because ``networks`` is the one package present
everywhere: installed with the project, and vendored into a standalone bundle, which has no
``prepare``. Plain Python: no torch, so that the ONNX segmenter can use it too.

- :data:`IMAGE_SUFFIXES`: every suffix an input image or mask may have; ``prepare``, the
  bundle's configs and the ONNX segmenter accept exactly these.
- :func:`list_files`: how every message about bad files names them, so that ``prepare`` and
  the bundle report alike.
- :func:`strict_decoding`: Pillow raising on truncated files while the checks decode them.
- :func:`write_atomically`: each file is written under a hidden temporary name in its own
  folder (``.partial-<pid>-<name>``: two processes never share one, and it keeps the suffix
  that Pillow and nibabel read the format from) and renamed with ``os.replace``, atomic within a folder. A process killed at any
  moment leaves at most a ``.partial-*`` file, never a truncated file under a final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: every suffix an input image may have (compared in lower case)
IMAGE_SUFFIXES = RASTER_SUFFIXES + NIFTI_SUFFIXES

PARTIAL_PREFIX = ".partial-"
#: how many files a message names before it only counts the rest
SHOWN_FILES = 5


def image_suffix(path: str | Path) -> str | None:
    """The image suffix of ``path`` in lower case (``.nii.gz`` counts as one), or None."""
    name = Path(path).name.lower()
    for suffix in NIFTI_SUFFIXES[::-1] + RASTER_SUFFIXES:  # .nii.gz before .nii
        if name.endswith(suffix):
            return suffix
    return None


def is_nifti(path: str | Path) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``)."""
    return image_suffix(path) in NIFTI_SUFFIXES


def stem(path: str | Path) -> str:
    """The file name without its image suffix: ``ISIC_0000001.jpg`` -> ``ISIC_0000001``."""
    name = Path(path).name
    suffix = image_suffix(path)
    return name[: -len(suffix)] if suffix else Path(path).stem


def list_files(items: Sequence[object]) -> str:
    """The count of ``items`` and the first :data:`SHOWN_FILES` of them, one per indented line,
    for an error message (a list of 2000 bad files would bury it; callers pass sorted lists)."""
    lines = [f"({len(items)}):", *(f"  {item}" for item in items[:SHOWN_FILES])]
    if len(items) > SHOWN_FILES:
        lines.append(f"  ... and {len(items) - SHOWN_FILES} more")
    return "\n".join(lines)


@contextlib.contextmanager
def strict_decoding() -> Iterator[None]:
    """Makes Pillow raise on truncated files for the duration, whatever another module set."""
    from PIL import ImageFile  # here: the suffixes and writes above need no Pillow

    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def partial_path(path: str | Path) -> Path:
    """The temporary name this process's :func:`write_atomically` writes ``path`` under."""
    path = Path(path)
    return path.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{path.name}")


def write_atomically(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Calls ``write(temporary_path)`` and renames the result to ``path``; returns ``path``.

    The folder is created if missing. On any error the temporary file is removed and the
    error propagates; ``path`` then still holds what it held before, if anything.
    """
    path = Path(path)
    partial = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """:func:`write_atomically` for text, flushed to disk before the rename (UTF-8)."""

    def write(partial: Path) -> None:
        with open(partial, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())

    return write_atomically(path, write)
