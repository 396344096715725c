"""The bundle's output files, written atomically (:mod:`networks.files`), with a failed write
reported as a :class:`~scripts.errors.WriteError` that says what to do.

Plain Python, so that the ONNX segmenter (commands/onnx_segment.py) writes the same way without
PyTorch or MONAI.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from networks import files
from networks.files import PARTIAL_PREFIX

from .errors import WriteError

__all__ = ["PARTIAL_PREFIX", "remove_partial_files", "write_atomically"]


def write_atomically(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Calls ``write(temporary_path)`` and renames the result to ``path``.

    Raises:
        WriteError: the folder cannot be made or written (no permission, disk full, ...);
            nothing is left under ``path`` or the temporary name.
    """
    try:
        return files.write_atomically(path, write)
    except OSError as error:
        raise WriteError(
            f"{path}: cannot write ({error.strerror or error}); make its folder writable and free some space, "
            "or choose another output_dir"
        ) from error


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Deletes what killed writes left in ``folder`` (not recursive); returns the paths."""
    leftovers = sorted(Path(folder).glob(PARTIAL_PREFIX + "*"))
    for path in leftovers:  # another process (a DDP rank) may be removing them too
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers
