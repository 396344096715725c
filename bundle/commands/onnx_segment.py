"""Segments every image in a folder with models/model.onnx: onnxruntime, NumPy and Pillow only
(nibabel for NIfTI inputs), no PyTorch or MONAI.

    python commands/onnx_segment.py --input_dir DIR --output_dir DIR [--model models/model.onnx]

Runs from any folder; the model defaults to the bundle's own ``models/model.onnx``. It reads,
lists, refuses and writes files as ``configs/inference.yaml`` does (same file types, the same
up-front decoding of every file and ``--on_unusable``, same outputs at the ORIGINAL size in
display orientation: ``<stem><mask_suffix>.png`` 0/255, class indices when the model has
several classes, or ``<stem><mask_suffix>.nii.gz`` with the input's affine;
``<stem>_overlay.jpg``; each written atomically), and processes each image as that config does:

1. read: Pillow, turned by the EXIF orientation as viewers display it (palette, 1-bit and CMYK
   images converted as ``pil_to_supported_mode``; large
   8-bit images decoded at a reduced scale that keeps both sides >= the model's size, as
   ``shrink_on_load``) as (channels, height, width); NIfTI as its data array (X, Y) or (X, Y, 1), transposed to
   (Y, X) as the config transposes MONAI's (X, Y) layout for the network;
2. to 3 float channels: grayscale repeated, an alpha channel dropped;
3. bilinear resize to the model's size (PyTorch's ``interpolate`` with
   ``align_corners=False`` and no anti-aliasing, as MONAI's ``Resized``);
4. min-max scaled over the whole image to [0, 255] (a constant image becomes 0), as
   ``ScaleIntensityd``;
5. the model: logits; sigmoid (1 class) or softmax (several);
6. probabilities resized back to the original size, bilinear as in 3;
7. lesion (255) where the probability is >= 0.5 (1 class), else the most probable class.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

BUNDLE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(BUNDLE_DIR))  # the bundle's `scripts` package; these modules need no PyTorch

from scripts.atomic import write_atomically  # noqa: E402
from scripts.errors import WriteError  # noqa: E402
from scripts.image_files import (  # noqa: E402
    ON_UNUSABLE,
    OVERLAY_SAVE_OPTIONS,
    TRANSPOSING_ORIENTATIONS,
    ImageFolder,
    draw_contours,
    is_nifti,
    orientation,
    overlay_size,
    shrink_on_load,
    stem,
)

logger = logging.getLogger("onnx_segment")
DEFAULT_MODEL = BUNDLE_DIR / "models" / "model.onnx"


def read_image(path: Path, min_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(3, height, width) float32 and the source's (height, width): raster images as stored
    (large ones decoded at a reduced scale, both sides >= ``min_size``), 2D NIfTI (X, Y) as (Y, X)."""
    original = None
    try:
        if is_nifti(path):
            import nibabel  # only NIfTI inputs need it

            data = np.swapaxes(np.asanyarray(nibabel.load(str(path)).dataobj), 0, 1)[None]
        else:
            with Image.open(path) as image:
                turned = orientation(image) in TRANSPOSING_ORIENTATIONS
                original = (image.width, image.height) if turned else (image.height, image.width)
                data = np.asarray(shrink_on_load(image, min_size))
            data = data[None] if data.ndim == 2 else np.moveaxis(data, -1, 0)
    except Exception as error:  # the library's message follows the file name
        raise ValueError(f"{path}: not a readable image ({type(error).__name__}: {error})") from error
    shape = data.shape[1:]
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 2D image, got spatial shape {shape}")
    if data.shape[0] in (2, 4):  # alpha
        data = data[:-1]
    if data.shape[0] == 1:
        data = np.repeat(data, 3, axis=0)
    return data.astype(np.float32), original or data.shape[1:]


def resize_bilinear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) -> (C, *size), bilinear with half-pixel centres and no anti-aliasing: the
    arithmetic of ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``."""
    for axis, out_len in ((1, size[0]), (2, size[1])):
        in_len = array.shape[axis]
        if in_len == out_len:
            continue
        source = np.maximum((np.arange(out_len, dtype=np.float32) + 0.5) * np.float32(in_len / out_len) - 0.5, 0)
        low = np.minimum(source.astype(np.int64), in_len - 1)
        high = np.minimum(low + 1, in_len - 1)
        weight = (source - low).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(array.ndim)])
        array = np.take(array, low, axis) * (1 - weight) + np.take(array, high, axis) * weight
    return array.astype(np.float32)


def scale_intensity(array: np.ndarray) -> np.ndarray:
    """Per-image min-max to [0, 255] over all channels; a constant image becomes 0."""
    low, high = array.min(), array.max()
    if high == low:
        return np.zeros_like(array)
    return (array - low) / (high - low) * np.float32(255)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Sigmoid of one channel, softmax over several; (C, H, W)."""
    if logits.shape[0] == 1:
        return 1 / (1 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(0, keepdims=True))
    return shifted / shifted.sum(0, keepdims=True)


class Segmenter:
    """The ONNX model with the bundle's pre- and postprocessing around it."""

    def __init__(self, model: Path, threads: int = 0) -> None:
        if not model.is_file():
            raise FileNotFoundError(f"model {model}: no such file (build it from the bundle root: python scripts/export_onnx.py)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ValueError(f"model {model}: not an ONNX model onnxruntime can load ({error})") from error
        (inputs,), (outputs,) = self.session.get_inputs(), self.session.get_outputs()
        self.input_name, self.output_name = inputs.name, outputs.name
        self.size = tuple(inputs.shape[2:])
        self.binary = outputs.shape[1] == 1

    def labels(self, images: list[tuple[np.ndarray, tuple[int, int]]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each (3, h, w) image read from a source of (H, W) pixels (:func:`read_image`): its
        (H, W) uint8 labels and the network's view of it, (3, *model size)."""
        batch = np.stack([scale_intensity(resize_bilinear(image, self.size)) for image, _ in images])
        logits = self.session.run([self.output_name], {self.input_name: batch})[0]
        results = []
        for (_, original), scaled, logit in zip(images, batch, logits):
            probability = resize_bilinear(probabilities(logit), original)
            labels = probability[0] >= 0.5 if self.binary else probability.argmax(0)
            results.append((labels.astype(np.uint8), scaled))
        return results


def overlay(labels: np.ndarray, view: np.ndarray, max_size: int) -> np.ndarray:
    """(h, w, 3) uint8: the network's (3, H', W') view under the contour of the (H, W) labels,
    at the labels' size shrunk to a longest side of at most ``max_size``."""
    height, width = overlay_size(labels.shape, max_size)
    picture = Image.fromarray(np.clip(np.moveaxis(view, 0, -1), 0, 255).astype(np.uint8))
    return draw_contours(np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR)), labels)


def write_outputs(
    source: Path,
    labels: np.ndarray,
    view: np.ndarray,
    output_dir: Path,
    binary: bool,
    mask_suffix: str = "_mask",
    overlay_max_size: int = 1024,
) -> None:
    """``<stem><mask_suffix>.png`` (or ``.nii.gz`` for NIfTI sources) from (H, W) labels
    (binary masks hold 0/255) and, unless ``overlay_max_size`` is 0, ``<stem>_overlay.jpg``;
    each appears under its name only once complete."""
    name = stem(source)
    mask_values = labels * np.uint8(255) if binary else labels
    if is_nifti(source):
        import nibabel

        original = nibabel.load(str(source))
        mask = nibabel.Nifti1Image(mask_values.T.reshape(original.shape), original.affine, original.header)
        mask.set_data_dtype(np.uint8)
        write_atomically(output_dir / f"{name}{mask_suffix}.nii.gz", lambda path: nibabel.save(mask, str(path)))
    else:
        picture = Image.fromarray(mask_values)
        write_atomically(output_dir / f"{name}{mask_suffix}.png", lambda path: picture.save(path, format="PNG"))
    if overlay_max_size > 0:
        drawn = Image.fromarray(overlay(labels, view, overlay_max_size))
        write_atomically(output_dir / f"{name}_overlay.jpg", lambda path: drawn.save(path, **OVERLAY_SAVE_OPTIONS))


def segment_folder(
    input_dir: Path,
    output_dir: Path,
    model: Path,
    batch_size: int = 8,
    threads: int = 0,
    mask_suffix: str = "_mask",
    overlay_max_size: int = 1024,
    on_unusable: str = "skip",
) -> None:
    """Segments every usable image in ``input_dir`` into ``output_dir`` and logs the summary line.
    Every input is decoded before anything is written (:class:`scripts.image_files.ImageFolder`).

    Raises:
        UnusableImages: files were unusable (``on_unusable`` ``"stop"``: before any work;
            ``"skip"``: at the end, after the others were segmented).
    """
    start = time.perf_counter()
    folder = ImageFolder(input_dir, on_unusable)
    files = [Path(item["image"]) for item in folder.datalist()]
    segmenter = Segmenter(model, threads)
    for first in range(0, len(files), batch_size):
        sources = files[first : first + batch_size]
        results = segmenter.labels([read_image(path, min(segmenter.size)) for path in sources])
        for source, (labels, view) in zip(sources, results):
            write_outputs(source, labels, view, output_dir, segmenter.binary, mask_suffix, overlay_max_size)
    folder.finish(output_dir, len(files), time.perf_counter() - start)
    folder.require_none_skipped(output_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input_dir", type=Path, required=True, help="folder of images (not searched recursively)")
    parser.add_argument("--output_dir", type=Path, required=True, help="folder for the masks and overlays")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the ONNX model (default: the bundle's own)")
    parser.add_argument("--batch_size", type=int, default=8, help="images per run of the model")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: one per core)")
    parser.add_argument("--mask_suffix", default="_mask", help="masks are named <stem><mask_suffix>; _segmentation: ISIC's names")
    parser.add_argument(
        "--overlay_max_size", type=int, default=1024, help="longest side of <stem>_overlay.jpg in pixels; 0: no overlays"
    )
    parser.add_argument(
        "--on_unusable",
        choices=ON_UNUSABLE,
        default="skip",
        help="unreadable, truncated or too large files: skip (segment the others, list them in OUTPUT_DIR/skipped.txt, "
        "exit 1) or stop (before any work)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(message)s")  # libraries' warnings and errors
    for name in ("onnx_segment", "scripts"):  # this script's lines and the folder's summary
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        segment_folder(
            args.input_dir,
            args.output_dir,
            args.model,
            args.batch_size,
            args.threads,
            args.mask_suffix,
            args.overlay_max_size,
            args.on_unusable,
        )
    except (FileNotFoundError, ValueError, WriteError) as error:
        logger.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
