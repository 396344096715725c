"""The one exception type of the package, and how its messages list files."""

from __future__ import annotations

from networks.files import list_files

__all__ = ["PrepareError", "list_files"]


class PrepareError(ValueError):
    """The input or the options cannot produce a datalist; the message says why and where."""
