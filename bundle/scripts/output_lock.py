"""One training run per ``output_dir``."""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import SettingsError

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
# held until the process ends; the operating system releases the lock of a killed process
_held: dict[Path, FileLock] = {}


def lock_output_dir(output_dir: str | Path) -> Path:
    """Takes ``output_dir/.lock`` for this process, or refuses when another run holds it.

    The lock is an OS file lock (``filelock``), so a lock file left by a killed run does
    not block the next one. Returns the lock file.

    Raises:
        SettingsError: another running process holds the lock.
    """
    folder = Path(output_dir).absolute()
    if folder in _held:
        return Path(_held[folder].lock_file)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise SettingsError(
            f"output_dir {output_dir} is in use by another training run (it holds {folder / LOCK_NAME}); "
            "wait for it to finish, or choose another output_dir"
        ) from None
    _held[folder] = lock
    logger.debug("locked %s", folder)
    return Path(lock.lock_file)
