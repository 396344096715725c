"""Writing predicted masks next to overlays a person can look through."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from PIL import Image

from .atomic import write_atomically
from .image_io import is_nifti, stem

logger = logging.getLogger(__name__)

GROUND_TRUTH_COLOUR = (0, 255, 0)
PREDICTION_COLOUR = (255, 0, 0)


def label_map(segmentation: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, X, Y) one-hot or (1, X, Y) labels -> (X, Y) integer labels."""
    array = np.asarray(segmentation.detach().cpu() if isinstance(segmentation, torch.Tensor) else segmentation)
    return (array.argmax(0) if array.shape[0] > 1 else array[0]).astype(np.uint8)


def contour(labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Foreground pixels with a 4-neighbour of another label, grown to ``thickness`` pixels."""
    edge = np.zeros(labels.shape, bool)
    padded = np.pad(labels, 1, mode="edge")
    for dx, dy in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dx : dx + labels.shape[0], dy : dy + labels.shape[1]] != labels
    edge &= labels > 0
    for _ in range(thickness - 1):
        grown = np.pad(edge, 1)
        edge = edge | grown[:-2, 1:-1] | grown[2:, 1:-1] | grown[1:-1, :-2] | grown[1:-1, 2:]
    return edge


def overlay(image: np.ndarray, prediction: np.ndarray, label: np.ndarray | None = None) -> np.ndarray:
    """(3, H, W) image in [0, 255] -> (H, W, 3) uint8 with contours: ground truth green, prediction red."""
    rgb = np.clip(np.moveaxis(image, 0, -1), 0, 255).astype(np.uint8)
    thickness = max(1, min(prediction.shape) // 200)
    if label is not None:
        rgb[contour(label, thickness)] = GROUND_TRUTH_COLOUR
    rgb[contour(prediction, thickness)] = PREDICTION_COLOUR
    return rgb


class SaveSegmentationd(MapTransform):
    """Writes ``<stem>_mask.png`` (or ``.nii.gz``) and ``<stem>_overlay.png`` for each prediction.

    Each file appears under its name only once complete (:func:`scripts.atomic.write_atomically`).

    PNG masks are uint8, 0/255 when binary, class indices otherwise. A NIfTI source gives a
    uint8 NIfTI mask of label values (0/1 when binary) with the source's affine and shape.
    Raster images are read as (C, H, W) (``PILReader(reverse_indexing=False)``), so arrays go
    to Pillow as they are.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | Path,
        image_key: str = "image",
        label_key: str | None = None,
        binary: bool = True,
    ) -> None:
        super().__init__(keys)
        self.output_dir = Path(output_dir)
        self.image_key = image_key
        self.label_key = label_key
        self.binary = binary

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        image = data[self.image_key]
        source = str(image.meta["filename_or_obj"])
        label = label_map(data[self.label_key]) if self.label_key else None
        for key in self.key_iterator(dict(data)):
            prediction = label_map(data[key])
            self._write_mask(source, prediction)
            picture = Image.fromarray(overlay(np.asarray(image.detach().cpu()), prediction, label))
            write_atomically(self.output_dir / f"{stem(source)}_overlay.png", picture.save)
        return data

    def _write_mask(self, source: str, mask: np.ndarray) -> None:
        if is_nifti(source):  # label values, as medical segmentations are stored
            original = nib.load(source)
            if mask.size == np.prod(original.shape):  # at the source's size: keep its geometry
                out = nib.Nifti1Image(mask.reshape(original.shape), original.affine, original.header)
            else:  # evaluation at the network's resolution
                out = nib.Nifti1Image(mask, np.eye(4))
            out.set_data_dtype(np.uint8)
            path = write_atomically(self.output_dir / f"{stem(source)}_mask.nii.gz", lambda p: nib.save(out, str(p)))
        else:
            picture = Image.fromarray(mask * 255 if self.binary else mask)
            path = write_atomically(self.output_dir / f"{stem(source)}_mask.png", picture.save)
        logger.debug("wrote %s", path)
