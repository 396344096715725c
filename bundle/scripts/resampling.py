"""Predictions back at the size of the source image, without full-size float arrays.

A 256 x 256 probability map of an 8000 x 6000 photo resized at once would take 192 MB per
channel as float32 (and MONAI's ``Invertd`` also inverts the image: 576 MB more). Here the
map is widened once (256 rows x 8000 columns) and then interpolated and thresholded in
strips of rows straight into the uint8 label image, the only full-size array.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform

from .image_io import source_size

ROWS_PER_STRIP = 256
# the lesion's value in a binary label map (metadata.json's channel_def): 0/255 PNG masks, as ISIC's
FOREGROUND = np.uint8(255)


def probabilities_to_labels(probabilities: torch.Tensor, size: Sequence[int], binary: bool = True) -> np.ndarray:
    """(C, h, w) probabilities -> (H, W) uint8 labels at ``size`` = (H, W).

    The probabilities are resized bilinearly with the sampling of
    ``F.interpolate(mode="bilinear", align_corners=False)`` (what MONAI's ``Resize`` and
    ``Invertd`` use), then thresholded at 0.5 (``binary``, one channel: 0 background, 255
    lesion) or reduced by argmax (class indices).

    Example::

        labels = probabilities_to_labels(torch.rand(1, 256, 256), (6000, 8000))  # (6000, 8000) uint8
    """
    probabilities = probabilities.detach().float().cpu()
    _, h, w = probabilities.shape
    height, width = int(size[0]), int(size[1])
    if (height, width) == (h, w):  # interpolating to the same size copies it exactly
        return decide(probabilities, binary)
    # columns first: (C, h, W) is small; equal heights make interpolate copy the rows exactly
    wide = F.interpolate(probabilities[None], size=(h, width), mode="bilinear", align_corners=False)[0]
    labels = np.empty((height, width), np.uint8)
    scale = h / height
    for top in range(0, height, ROWS_PER_STRIP):
        rows = torch.arange(top, min(top + ROWS_PER_STRIP, height), dtype=torch.float64)
        source = ((rows + 0.5) * scale - 0.5).clamp(min=0)  # the source row of each output row
        below = source.long().clamp(max=h - 1)
        above = (below + 1).clamp(max=h - 1)
        weight = (source - below).float()[:, None]
        strip = torch.lerp(wide[:, below], wide[:, above], weight)  # (C, rows, W)
        labels[top : top + len(rows)] = decide(strip, binary)
    return labels


def decide(probabilities: torch.Tensor, binary: bool) -> np.ndarray:
    """(C, h, w) probabilities -> (h, w) uint8 labels: 0/255 at 0.5 (``binary``) or the argmax."""
    if binary:
        return (probabilities[0] > 0.5).numpy() * FOREGROUND
    return probabilities.argmax(0).numpy().astype(np.uint8)


class SourceSizeLabelsd(MapTransform):
    """Probabilities in the network's layout -> a uint8 label map in the source image's geometry.

    The inverse of the preprocessing's ``Transposed`` (MONAI's (W, H) to the network's (H, W))
    and ``Resized``, as ``Invertd`` would give it, then the decision: probabilities (C, h, w)
    become labels (W, H) at the source's size, without a channel axis: 0/255 for one channel
    (threshold 0.5), class indices for several (argmax). The source is
    ``meta["filename_or_obj"]`` of ``data[image_key]``; its size comes from the file's header,
    since the readers may have decoded it at a reduced scale. A NIfTI source stored as
    X x Y x 1 gives labels of X x Y (the writer restores its shape).

    Args:
        keys: the probability maps, (C, h, w).
        image_key: the loaded image, whose metadata names the source file.
        binary: threshold at 0.5 (one channel) instead of argmax.
    """

    def __init__(self, keys: KeysCollection, image_key: str = "image", binary: bool = True) -> None:
        super().__init__(keys)
        self.image_key = image_key
        self.binary = binary

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        width, height = source_size(d[self.image_key].meta["filename_or_obj"])[:2]
        for key in self.key_iterator(d):
            d[key] = torch.from_numpy(probabilities_to_labels(d[key], (height, width), self.binary).T)
        return d
