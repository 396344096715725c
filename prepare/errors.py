"""The one exception type of the package, and how its messages list files."""

from __future__ import annotations

from collections.abc import Sequence

#: How many offending files an error message names before it only counts the rest.
SHOWN_FILES = 5


class PrepareError(ValueError):
    """The input or the options cannot produce a datalist; the message says why and where."""


def list_files(items: Sequence[object]) -> str:
    """The count of ``items`` and the first few of them, one per indented line, for an error message.

    A list of 2000 missing masks would bury the message, so only the first
    :data:`SHOWN_FILES` are named, in the order given (callers pass sorted lists).
    """
    lines = [f"({len(items)}):", *(f"  {item}" for item in items[:SHOWN_FILES])]
    if len(items) > SHOWN_FILES:
        lines.append(f"  ... and {len(items) - SHOWN_FILES} more")
    return "\n".join(lines)
