"""Reading images of any common 2D format and channel layout for the network."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

# listing and checking input files needs neither torch nor MONAI (scripts/onnx_segment.py)
from .image_files import (
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    check_readable,
    image_suffix,
    is_nifti,
    list_images,
    pil_to_supported_mode,
    stem,
)

__all__ = [
    "NIFTI_SUFFIXES", "RASTER_SUFFIXES", "As2DChannelsd", "check_readable", "image_suffix", "is_nifti",
    "list_images", "pil_to_supported_mode", "stem",
]


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
        return image.float()
