"""Errors a user can fix (a setting, a file, a folder), and how a run that stops on one ends.

MONAI evaluates the configs' expressions inside ``try: ... except Exception as e: raise
RuntimeError("Failed to evaluate ConfigExpression ...") from e`` (and applies transforms
likewise), so without help the last line of a failed ``python -m monai.bundle run`` names
MONAI's wrapper and not the problem.
:func:`report_errors_plainly` installs an exception hook that skips those wrappers: a
:class:`BundleError` ends the run with its message alone (one line per problem, no
traceback), any other error with the traceback of the real error, whose message is then the
last line. The exit status stays 1.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType

# messages of the RuntimeErrors that MONAI raises `from` the real error: monai.bundle's, and
# monai.transforms.apply_transform's (a writer failing inside a Compose, say)
_MONAI_WRAPPERS = ("Failed to evaluate", "Failed to instantiate", "applying transform")


class BundleError(Exception):
    """A problem the user can fix; the message names the setting, file or folder and the fix."""


class SettingsError(BundleError, ValueError):
    """A command-line key or config value that cannot work."""


class NonFiniteError(BundleError, ArithmeticError):
    """Training produced a NaN or infinite loss or weight."""


class WriteError(BundleError, OSError):
    """An output file could not be written (folder not writable, disk full, ...)."""


def real_error(error: BaseException) -> BaseException:
    """``error`` without MONAI's config-evaluation wrappers around it."""
    while isinstance(error, RuntimeError) and error.__cause__ is not None and str(error).startswith(_MONAI_WRAPPERS):
        error = error.__cause__
    return error


def _close_progress_bars() -> None:
    """Closes open tqdm bars now: closed later (at exit), they would print after the message."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(tqdm.tqdm, "_instances", ()) if tqdm else ()):
        bar.close()


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    _close_progress_bars()
    cause = real_error(error)
    if isinstance(cause, BundleError):
        sys.stderr.write("".join(f"error: {line}\n" for line in str(cause).splitlines()))
    elif cause is error:
        sys.__excepthook__(kind, error, tb)
    else:
        traceback.print_exception(type(cause), cause, cause.__traceback__)
    sys.stderr.flush()


def report_errors_plainly() -> None:
    """Makes an uncaught error end the program's output with its own message (see above)."""
    sys.excepthook = _excepthook
