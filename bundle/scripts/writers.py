"""Writing predicted masks next to overlays a person can look through."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine
from monai.config import KeysCollection
from monai.handlers import MetricsSaver as _MonaiMetricsSaver
from monai.transforms import MapTransform
from monai.utils import convert_to_tensor
from PIL import Image

from networks.files import is_nifti, stem

from .atomic import PARTIAL_PREFIX, write_atomically
from .errors import WriteError
from .image_files import OVERLAY_SAVE_OPTIONS, draw_contours, overlay_size
from .image_io import display_oriented, pil_to_supported_mode

logger = logging.getLogger(__name__)

# zlib's fastest level: a mask is written in a third of the time of the default level, for
# files about twice as large
PNG_COMPRESS_LEVEL = 1


def label_map(segmentation: torch.Tensor | np.ndarray) -> np.ndarray:
    """A (W, H) label map (what the configs' postprocessing gives) as a uint8 array."""
    array = np.asarray(segmentation.detach().cpu() if isinstance(segmentation, torch.Tensor) else segmentation)
    if array.ndim != 2:
        raise ValueError(f"expected a (W, H) label map without a channel axis, got shape {array.shape}")
    return array.astype(np.uint8, copy=False)


def overlay_picture(source: str, network_input: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """The picture under the contours, (H, W, 3) uint8 at ``size`` = (H, W).

    Overlays larger than the network's input are read again from 8-bit raster sources, in
    display orientation, decoded at a reduced scale where the format allows (a 1024 px overlay
    of an 8000 px JPEG decodes 2000 px). Otherwise, and for 16-bit, float and NIfTI sources, the picture is the
    network's input (min-max scaled to [0, 255] per image), resized.
    """
    if max(size) > max(network_input.shape[1:]) and not is_nifti(source):
        with Image.open(source) as image:
            image.draft(None, (max(size), max(size)))  # either side may become the width on display
            image = pil_to_supported_mode(display_oriented(image))
            if image.mode in ("L", "LA", "RGB", "RGBA"):
                return np.asarray(image.convert("RGB").resize((size[1], size[0]), Image.Resampling.BILINEAR))
    # a plain tensor: MetaTensor's bookkeeping on each step cost more than the steps
    plain = convert_to_tensor(network_input, track_meta=False).detach().cpu()
    picture = plain.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    if picture.shape[:2] == tuple(size):
        return picture
    return np.asarray(Image.fromarray(picture).resize((size[1], size[0]), Image.Resampling.BILINEAR))


class SaveSegmentationd(MapTransform):
    """Writes ``<stem><mask_suffix>.png`` (or ``.nii.gz``) and ``<stem>_overlay.jpg`` for each prediction.

    The predictions are label maps in MONAI's layout, (W, H) at the source's size, as the
    configs' ``postprocessing`` ends (:class:`scripts.resampling.SourceSizeLabelsd`); they are
    written as they are: uint8, 0/255 for a binary model, class indices otherwise. A PNG mask
    is W pixels wide and H high, as the source; a NIfTI source gives a NIfTI mask with its
    affine and shape. Each file appears under its name only once complete
    (:func:`scripts.atomic.write_atomically`). Overlays are for browsing: their longest side
    is at most ``overlay_max_size`` pixels, and 0 writes none; ``label_key`` (a label map like
    the prediction) adds the ground truth's contour.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | Path,
        image_key: str = "image",
        label_key: str | None = None,
        mask_suffix: str = "_mask",
        overlay_max_size: int = 1024,
    ) -> None:
        super().__init__(keys)
        self.output_dir = Path(output_dir)
        self.image_key = image_key
        self.label_key = label_key
        self.mask_suffix = mask_suffix
        self.overlay_max_size = int(overlay_max_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        image = data[self.image_key]
        source = str(image.meta["filename_or_obj"])
        label = label_map(data[self.label_key]).T if self.label_key else None
        for key in self.key_iterator(dict(data)):
            prediction = label_map(data[key])
            self._write_mask(source, prediction)
            if self.overlay_max_size > 0:
                rows_first = prediction.T  # (H, W), as pictures are stored
                picture = overlay_picture(source, image, overlay_size(rows_first.shape, self.overlay_max_size))
                path = self.output_dir / f"{stem(source)}_overlay.jpg"
                picture = Image.fromarray(draw_contours(picture, rows_first, label))
                write_atomically(path, functools.partial(picture.save, **OVERLAY_SAVE_OPTIONS))
        return data

    def _write_mask(self, source: str, mask: np.ndarray) -> None:
        name = f"{stem(source)}{self.mask_suffix}"
        if is_nifti(source):
            original = nib.load(source)
            out = nib.Nifti1Image(mask.reshape(original.shape), original.affine, original.header)
            out.set_data_dtype(np.uint8)
            path = write_atomically(self.output_dir / f"{name}.nii.gz", lambda p: nib.save(out, str(p)))
        else:
            picture = Image.fromarray(np.ascontiguousarray(mask.T))
            path = write_atomically(
                self.output_dir / f"{name}.png",
                lambda p: picture.save(p, format="PNG", compress_level=PNG_COMPRESS_LEVEL),
            )
        logger.debug("wrote %s", path)


class MetricsSaver(_MonaiMetricsSaver):
    """MONAI's MetricsSaver, whose CSV files appear in ``save_dir`` only once complete.

    MONAI writes them in place; here they are written into a hidden temporary folder inside
    ``save_dir`` and then renamed one by one.
    """

    def __call__(self, engine: Engine) -> None:
        final = Path(self.save_dir)
        try:
            final.mkdir(parents=True, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=final)
        except OSError as error:
            raise WriteError(f"{final}: cannot write the metrics ({error.strerror}); choose another output_dir") from error
        try:
            self.save_dir = staging
            super().__call__(engine)
            for written in sorted(Path(staging).iterdir()):
                os.replace(written, final / written.name)
        except OSError as error:
            raise WriteError(
                f"{final}: cannot write the metrics ({error.strerror}); free some space or choose another output_dir"
            ) from error
        finally:
            self.save_dir = str(final)
            shutil.rmtree(staging, ignore_errors=True)
