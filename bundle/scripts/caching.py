"""Keys of the on-disk cache of preprocessed cases (``monai.data.PersistentDataset``).

A cached case is the deterministic part of the preprocessing (decode, channels, resize,
scale) of one datalist item. Its file name is a hash of what shaped it, so that editing an
image or a mask, or changing a setting such as ``spatial_size``, makes a new entry instead of
reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import monai

# raised when the cached preprocessing changes in a way no setting shows (new code)
CACHE_FORMAT = 3  # 2: images read in MONAI's layout, then transposed; 3: transposed after the resize


class CaseKey:
    """``hash_func`` of ``PersistentDataset``: a case's paths, each file's size and modification
    time, the settings that shape the cached tensors, and the MONAI version.

    Args:
        settings: the settings the deterministic preprocessing depends on, e.g.
            ``{"spatial_size": 256, "num_classes": 1}``; any JSON-serialisable values.

    Example::

        key = CaseKey({"spatial_size": 256})
        key({"image": "a.jpg", "label": "a.png"})  # b'3f2a...' (hex digest)
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = json.dumps(dict(settings), sort_keys=True, default=str)

    def __call__(self, item: Mapping[str, Any]) -> bytes:
        files = {}
        for key, value in sorted(item.items()):
            if isinstance(value, str) and os.path.isfile(value):
                stat = os.stat(value)
                files[key] = [os.path.abspath(value), stat.st_size, stat.st_mtime_ns]
        others = {k: v for k, v in item.items() if k not in files}
        text = json.dumps([files, others, self.settings, monai.__version__, CACHE_FORMAT], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest().encode()
