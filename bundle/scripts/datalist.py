"""The lists of files a config reads: the splits of a ``datalist.json`` written by ``python -m
prepare``, listed when the run needs them (not when the config is parsed)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence, Sized
from pathlib import Path
from typing import Any

import torch
from monai.data import load_decathlon_datalist
from torch.utils.data import RandomSampler, Sampler

from .errors import SettingsError
from .image_files import find_unusable, unusable_message

logger = logging.getLogger(__name__)


def load_split(dataset_dir: str | Path, key: str, decode: bool = False) -> list[dict[str, str]]:
    """The ``key`` split of ``dataset_dir/datalist.json``, with absolute paths.

    Args:
        dataset_dir: a folder made by ``python -m prepare``.
        key: the split.
        decode: decode every listed file now, so that all unusable ones are named before any
            work (``prepare`` decoded them once; this finds files changed since).

    Raises:
        SettingsError: no datalist.json, the split is absent or empty, a listed file is
            missing, or (``decode``) some cannot be read.
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
    if decode:
        files = [Path(f) for item in items for f in item.values() if isinstance(f, str)]
        unusable = find_unusable(files)
        if unusable:
            raise SettingsError(unusable_message(unusable, len(files), f"the '{key}' split of {path}"))
    logger.info("%s: %d cases in '%s'", path, len(items), key)
    return items


class DataNotReady(SettingsError, TypeError):
    """A :class:`DeferredList` asked for its length before its files can be listed.

    A ``TypeError`` too, Python's "this object has no length (yet)": MONAI's engines and
    Ignite then take their epoch length when they run instead of when they are made.
    """


class DeferredList(Sequence):
    """The list ``make()`` returns, made at its first use instead of when the config is parsed.

    A bundle config parsed before its data exist (``monai.bundle.create_workflow`` followed by
    ``check_properties()``, a tool that sets ``dataset_dir`` afterwards) builds its datasets,
    loaders and engines from it without reading a file. Listing the files, and any error in
    doing so (a missing ``datalist.json``, an unreadable image), happens at the first
    ``len()``, indexing or iteration; the configs' ``run`` starts with
    :func:`scripts.settings.check_data`, which does it before anything else. A successful
    listing is kept; a failed one is tried again at the next use.

    Args:
        make: returns the datalist, e.g. ``functools.partial(load_split, "data/demo", "test")``
            (``_mode_: callable`` with arguments, in a config).

    Example::

        data = DeferredList(functools.partial(load_split, "data/demo", "training"))  # reads nothing
        len(data)  # reads data/demo/datalist.json
    """

    def __init__(self, make: Callable[[], list[dict[str, Any]]]) -> None:
        self.make = make
        self._items: list[dict[str, Any]] | None = None

    def items(self) -> list[dict[str, Any]]:
        """The datalist, made now if not yet; raises what ``make`` raises."""
        if self._items is None:
            self._items = list(self.make())
        return self._items

    def __len__(self) -> int:
        try:
            return len(self.items())
        except (OSError, ValueError) as error:
            raise DataNotReady(str(error)) from error

    def __getitem__(self, index: Any) -> Any:
        return self.items()[index]


class ShuffledOrder(RandomSampler):
    """``torch.utils.data.RandomSampler`` (a new permutation every epoch, drawn from torch's
    global seed as ``DataLoader(shuffle=True)`` draws it) that takes its data's length when
    iterated, not when made, so that a :class:`DeferredList` is not listed while the config
    is parsed. For ``DataLoader(sampler=...)``."""

    def __init__(self, data_source: Sized, generator: torch.Generator | None = None) -> None:
        # RandomSampler.__init__ would ask for len(data_source) to check num_samples
        Sampler.__init__(self)
        self.data_source = data_source
        self.replacement = False
        self._num_samples = None
        self.generator = generator
