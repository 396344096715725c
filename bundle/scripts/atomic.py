"""Writing output files so that a final name only ever holds a complete file.

Each file is written under a hidden temporary name in its own folder (``.partial-<name>``,
which keeps the suffix that Pillow and nibabel read the format from) and then renamed with
``os.replace``, which is atomic within a folder. A run killed at any moment therefore leaves
at most a ``.partial-*`` file, never a truncated file under a final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ignite.engine import Engine
from monai.handlers import MetricsSaver as _MonaiMetricsSaver

from .errors import WriteError

PARTIAL_PREFIX = ".partial-"


def write_atomically(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Calls ``write(temporary_path)`` and renames the result to ``path``.

    Raises:
        WriteError: the folder cannot be made or written (no permission, disk full, ...);
            nothing is left under ``path`` or the temporary name.
    """
    path = Path(path)
    partial = path.with_name(PARTIAL_PREFIX + path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise WriteError(
            f"{path}: cannot write ({error.strerror or error}); make its folder writable and free some space, "
            "or choose another output_dir"
        ) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Deletes what killed writes left in ``folder`` (not recursive); returns the paths."""
    leftovers = sorted(Path(folder).glob(PARTIAL_PREFIX + "*"))
    for path in leftovers:  # another process (a DDP rank) may be removing them too
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers


class MetricsSaver(_MonaiMetricsSaver):
    """MONAI's MetricsSaver, whose CSV files appear in ``save_dir`` only once complete.

    MONAI writes them in place; here they are written into a hidden temporary folder inside
    ``save_dir`` and then renamed one by one.
    """

    def __call__(self, engine: Engine) -> None:
        final = Path(self.save_dir)
        try:
            final.mkdir(parents=True, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=final)
        except OSError as error:
            raise WriteError(f"{final}: cannot write the metrics ({error.strerror}); choose another output_dir") from error
        try:
            self.save_dir = staging
            super().__call__(engine)
            for written in sorted(Path(staging).iterdir()):
                os.replace(written, final / written.name)
        except OSError as error:
            raise WriteError(
                f"{final}: cannot write the metrics ({error.strerror}); free some space or choose another output_dir"
            ) from error
        finally:
            self.save_dir = str(final)
            shutil.rmtree(staging, ignore_errors=True)
