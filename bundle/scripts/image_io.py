"""Reading images of any common 2D format and channel layout for the network."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, NibabelReader, PILReader
from monai.transforms import LoadImage, MapTransform
from PIL import Image

# listing and checking input files needs neither torch nor MONAI (commands/onnx_segment.py)
from networks.files import is_nifti, stem

from .image_files import (
    ImageFolder,
    display_oriented,
    display_size,
    pil_to_supported_mode,
    shrink_on_load,
)

__all__ = [
    "As2DChannelsd",
    "ImageFolder",
    "KeepFileNamed",
    "ShrinkOnLoad",
    "SourceLabelsd",
    "display_oriented",
    "display_size",
    "is_nifti",
    "pil_to_supported_mode",
    "shrink_on_load",
    "source_size",
    "stem",
]


class ShrinkOnLoad:
    """``PILReader`` converter: :func:`shrink_on_load`, then modes as :func:`pil_to_supported_mode`.

    The network sees a box-filtered (anti-aliased) image instead of one resized from full
    size with bilinear sampling alone; training, evaluation and inference all read through it.

    Args:
        min_size: the smallest side to keep, the network's ``spatial_size``.
    """

    def __init__(self, min_size: int) -> None:
        self.min_size = int(min_size)

    def __call__(self, image: Image.Image) -> Image.Image:
        return shrink_on_load(image, self.min_size)


def source_size(path: str | Path) -> tuple[int, ...]:
    """The spatial shape of the image in ``path`` in MONAI's layout, as the readers give it with
    their default indexing, from its header alone: (W, H) as displayed (EXIF orientation
    applied) for raster images, the data shape (X, Y) or (X, Y, 1) for NIfTI."""
    if is_nifti(path):
        return tuple(nib.load(str(path)).shape)
    return display_size(path)


class As2DChannelsd(MapTransform):
    """Makes each loaded, channel-first image 2D with ``num_channels`` float channels.

    Grayscale is repeated to 3 channels, an alpha channel (LA, RGBA) is dropped, and a NIfTI
    image stored as X x Y x 1 loses its singleton axis. For a 1-channel target (masks, label
    maps) a colour image keeps its first channel.
    """

    def __init__(self, keys: KeysCollection, num_channels: int, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.num_channels = num_channels

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self._convert(d[key])
        return d

    def _convert(self, image: torch.Tensor) -> torch.Tensor:
        source = getattr(image, "meta", {}).get("filename_or_obj", "image")
        shape: Sequence[int] = tuple(image.shape[1:])
        while image.ndim > 3 and image.shape[-1] == 1:
            image = image.squeeze(-1)
        if image.ndim != 3:
            raise ValueError(f"{source}: expected a 2D image, got spatial shape {shape}")
        if image.shape[0] in (2, 4):
            image = image[:-1]
        channels = image.shape[0]
        if channels == 1 and self.num_channels > 1:
            image = image.repeat(self.num_channels, 1, 1)
        elif channels > 1 and self.num_channels == 1:
            image = image[:1]
        elif channels != self.num_channels:
            raise ValueError(f"{source}: {channels} channels, cannot make {self.num_channels}")
        # contiguous: loaded images come with channels-last strides, on which the min-max
        # scaling's reductions run many times slower
        return image.float().contiguous()


class KeepFileNamed(MapTransform):
    """Drops an image's metadata and transform trace except the name of its file.

    Images of different formats (PNG, JPEG, NIfTI: different metadata keys) then share a
    batch, and collating and splitting batches stays cheap. Nothing after it may need the
    rest (``Invertd`` does; the bundle's inference resizes back from the source file instead).
    """

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            d[key] = MetaTensor(torch.as_tensor(image), meta={"filename_or_obj": image.meta["filename_or_obj"]})
        return d


class SourceLabelsd(MapTransform):
    """Ground-truth masks read again from their files, as label maps like the predictions of
    :class:`scripts.resampling.SourceSizeLabelsd`: (W, H) uint8 at the file's own size, as
    displayed (EXIF orientation applied, as the configs read masks).

    Binary: 255 where the stored value is above 0.5 (0/1 and 0/255 masks alike), else 0; with
    several classes the stored class indices. The file is ``meta["filename_or_obj"]`` of each
    key's (loaded and resized) mask.

    Args:
        keys: the loaded masks.
        binary: binarise (one class) instead of keeping class indices.
    """

    def __init__(self, keys: KeysCollection, binary: bool = True) -> None:
        super().__init__(keys)
        self.binary = binary
        readers = [NibabelReader(), PILReader(converter=display_oriented)]
        self.load = LoadImage(reader=readers, image_only=True, ensure_channel_first=True)
        self.one_channel = As2DChannelsd(keys=keys, num_channels=1)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            stored = self.one_channel({key: self.load(d[key].meta["filename_or_obj"])})[key][0]
            labels = (stored > 0.5) * 255 if self.binary else stored.round()
            d[key] = labels.to(torch.uint8).as_tensor() if isinstance(labels, MetaTensor) else labels.to(torch.uint8)
        return d
