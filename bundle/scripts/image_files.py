"""Finding and checking input images, reading them as viewers display them, and outlining
labels for overlays: plain Python, NumPy, Pillow and nibabel, no torch or MONAI, so that the
ONNX segmenter (commands/onnx_segment.py) lists, refuses and outlines as the bundle does.

The suffixes it accepts are the project's one list (:data:`networks.files.IMAGE_SUFFIXES`),
which ``prepare`` reads too.

Orientation: a raster file is read as viewers display it, its EXIF orientation tag applied
(:func:`display_oriented`), and every output is written in that orientation without a tag.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from networks.files import IMAGE_SUFFIXES, image_suffix, is_nifti, list_files, stem, strict_decoding

from .atomic import write_atomically
from .errors import BundleError

logger = logging.getLogger(__name__)

GROUND_TRUTH_COLOUR = (0, 255, 0)
PREDICTION_COLOUR = (255, 0, 0)
# Overlays are photos with a contour, for people to browse: JPEG is much faster to write and
# smaller than PNG. Full-resolution chroma (4:4:4) keeps one-pixel contours in their colour.
OVERLAY_SAVE_OPTIONS = {"format": "JPEG", "quality": 90, "subsampling": 0}

#: the EXIF tag that says how a viewer turns the stored pixels for display (values 1-8)
EXIF_ORIENTATION = 0x0112
#: the EXIF orientations whose display swaps width and height
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)

#: what ``on_unusable`` accepts: go on without the unusable files, or stop before any work
ON_UNUSABLE = ("skip", "stop")
#: the file in the output folder that lists the files a run skipped
SKIPPED_LIST = "skipped.txt"
#: kinds of unusable file, in the order messages list them
NOT_AN_IMAGE = "files that are not images"
TRUNCATED = "truncated or corrupt images"
TOO_LARGE = "images too large to decode"
NOT_2D = "images that are not 2D"
PROBLEM_ORDER = (NOT_AN_IMAGE, TRUNCATED, TOO_LARGE, NOT_2D)


def pil_to_supported_mode(image: Image.Image) -> Image.Image:
    """Converts Pillow modes whose pixel values are not intensities (palette, CMYK, ...).

    Grayscale (also 16-bit and float), RGB and RGBA pass unchanged; As2DChannelsd then makes
    3 channels, so no precision is lost on 16-bit images.
    """
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("P", "PA"):
        return image.convert("RGBA")
    if image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    return image


def orientation(image: Image.Image) -> int:
    """The EXIF orientation of ``image`` (1-8; 1, as stored, when it has no valid tag)."""
    value = image.getexif().get(EXIF_ORIENTATION, 1)
    return value if value in range(1, 9) else 1


def display_oriented(image: Image.Image) -> Image.Image:
    """``image`` as viewers and browsers display it: turned and mirrored by its EXIF orientation.

    Phones and dermoscopes clipped to them store pixels as the sensor saw them and record the
    turn in the tag; every viewer applies it, so masks and overlays line up with what the user
    sees only when the pixels are read this way. An image without a turn passes unchanged.
    """
    return ImageOps.exif_transpose(image) if orientation(image) != 1 else image


def display_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the raster image in ``path`` as displayed, from its header alone."""
    with Image.open(path) as image:
        if orientation(image) in TRANSPOSING_ORIENTATIONS:
            return image.height, image.width
        return image.width, image.height


# modes Image.reduce averages correctly (16-bit and float images are left at full size)
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA")


def shrink_on_load(image: Image.Image, min_size: int) -> Image.Image:
    """Decodes no more pixels of a lazily opened ``image`` than a ``min_size`` result needs,
    in display orientation (:func:`display_oriented`).

    A JPEG is decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, ``Image.draft``); another 8-bit
    image is box-averaged by an integer factor (``Image.reduce``). Either way both sides stay
    at least ``min_size`` pixels, and smaller images pass unchanged. An 8000x6000 photo for a
    256 px input becomes 1000x750 without the full image ever being held in memory.
    """
    image.draft(None, (min_size, min_size))  # JPEG only; a no-op for other formats
    image = pil_to_supported_mode(display_oriented(image))
    factor = min(image.width // min_size, image.height // min_size)
    if factor > 1 and image.mode in _REDUCIBLE_MODES:
        image = image.reduce(factor)
    return image


@dataclass(frozen=True)
class Unusable:
    """A file that cannot be segmented: its path, a kind from :data:`PROBLEM_ORDER` and why."""

    path: Path
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({self.reason})"


class UnusableImages(BundleError, ValueError):
    """Some listed files cannot be read; the message names each, grouped by kind."""

    def __init__(self, unusable: Sequence[Unusable], total: int, where: str) -> None:
        super().__init__(unusable_message(unusable, total, where))
        self.unusable = list(unusable)


def unusable_message(unusable: Sequence[Unusable], total: int, where: str) -> str:
    """``"N of M images in WHERE are unusable:"`` and the files, grouped by kind as ``prepare``
    groups its unusable pairs."""
    by_kind: dict[str, list[Unusable]] = defaultdict(list)
    for item in unusable:
        by_kind[item.kind].append(item)
    lines = [f"{kind} {list_files(by_kind[kind])}" for kind in PROBLEM_ORDER if kind in by_kind]
    return f"{len(unusable)} of {total} images in {where} are unusable:\n" + "\n".join(lines)


def check_image(path: str | Path) -> Unusable | None:
    """Decodes all of ``path`` as the readers will; returns why it cannot be used, or None.

    Only a full decode finds a truncated file: its header, which is all ``Image.verify`` reads
    of a JPEG, is intact. A JPEG is decoded at 1/8 scale (``Image.draft``), which still reads
    and Huffman-decodes every byte of its data but skips most of the inverse DCT. Call it
    inside :func:`strict_decoding`.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return Unusable(path, NOT_AN_IMAGE, "empty file")
        if is_nifti(path):
            return _check_nifti(path)
        with Image.open(path) as image:
            image.draft(None, (1, 1))
            display_oriented(image).load()
    except UnidentifiedImageError:
        return Unusable(path, NOT_AN_IMAGE, "not an image file Pillow can read")
    except Image.DecompressionBombError as error:
        return Unusable(path, TOO_LARGE, str(error).split(" could be")[0].rstrip(","))
    # decoders signal corrupt data with many exception types (OSError, SyntaxError,
    # struct.error, zlib.error, ...): any of them makes the file unusable
    except Exception as error:
        return Unusable(path, TRUNCATED, f"{type(error).__name__}: {error}")
    return None


def _check_nifti(path: Path) -> Unusable | None:
    import nibabel  # only NIfTI inputs need it

    try:
        image = nibabel.load(str(path))
        data = np.asanyarray(image.dataobj)  # reads (and decompresses) every byte
    except nibabel.filebasedimages.ImageFileError as error:
        return Unusable(path, NOT_AN_IMAGE, str(error))
    if sum(size > 1 for size in data.shape[2:]):
        return Unusable(path, NOT_2D, f"spatial shape {data.shape}")
    return None


def find_unusable(paths: Sequence[Path], workers: int | None = None) -> list[Unusable]:
    """:func:`check_image` of every path, in order, on ``workers`` threads (one per core):
    the decoders release the GIL."""
    with strict_decoding(), ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return [problem for problem in pool.map(check_image, paths) if problem is not None]


class ImageFolder:
    """The images of a folder (not recursive), each decoded once up front so that every bad
    file is named before any work, and what to do about them.

    Args:
        input_dir: the folder.
        on_unusable: ``"stop"``: refuse the folder, naming every unusable file; ``"skip"``: go
            on with the others, log the unusable ones now and at :meth:`finish`, list them in
            ``skipped.txt`` in the output folder, and end with an error
            (:meth:`require_none_skipped`).
        workers: threads that check the files (0: one per core).

    Example::

        folder = ImageFolder("photos", on_unusable="skip")
        datalist = folder.datalist()  # [{"image": "photos/a.jpg"}, ...], the usable ones
    """

    def __init__(self, input_dir: str | Path, on_unusable: str = "skip", workers: int = 0) -> None:
        if on_unusable not in ON_UNUSABLE:
            raise ValueError(f"on_unusable {on_unusable!r}: choose {' or '.join(ON_UNUSABLE)}")
        self.input_dir = Path(input_dir)
        self.on_unusable = on_unusable
        self.workers = workers
        self.skipped: list[Unusable] = []
        self.total = 0

    def datalist(self) -> list[dict[str, str]]:
        """The datalist of the folder's usable images, sorted by name.

        Raises:
            FileNotFoundError: the folder does not exist.
            ValueError: it holds no image, or two images would give the same output name.
            UnusableImages: some files cannot be read and ``on_unusable`` is ``"stop"``, or
                none can.
        """
        files = image_paths(self.input_dir)
        self.total = len(files)
        logger.info("checking %d images in %s", len(files), self.input_dir)
        unusable = find_unusable(files, self.workers)
        if unusable and (self.on_unusable == "stop" or len(unusable) == len(files)):
            raise UnusableImages(unusable, len(files), str(self.input_dir))
        if unusable:
            logger.warning("%s\nskipping them", unusable_message(unusable, len(files), str(self.input_dir)))
        self.skipped = unusable
        bad = {item.path for item in unusable}
        return [{"image": str(path)} for path in files if path not in bad]

    def finish(self, output_dir: str | Path, written: int, seconds: float) -> None:
        """:func:`finish_run` with the files this folder skipped."""
        finish_run(output_dir, written, seconds, self.skipped)

    def require_none_skipped(self, output_dir: str | Path) -> None:
        """Ends a run that skipped files with an error status.

        Raises:
            UnusableImages: files were skipped; the message names them again.
        """
        if self.skipped:
            where = f"{self.input_dir} (skipped, listed in {Path(output_dir) / SKIPPED_LIST})"
            raise UnusableImages(self.skipped, self.total, where)


def finish_run(output_dir: str | Path, written: int, seconds: float, skipped: Sequence[Unusable] = ()) -> None:
    """Logs a run's summary line (masks written, where, files skipped, time) and lists the
    skipped files in ``output_dir/skipped.txt``, tab-separated: path, kind, reason."""
    output_dir = Path(output_dir)
    listing = output_dir / SKIPPED_LIST
    listing.unlink(missing_ok=True)  # a list from an earlier run in this folder would mislead
    summary = f"wrote {written} masks to {output_dir} in {seconds:.1f} s"
    if not skipped:
        logger.info("%s; skipped none", summary)
        return
    lines = "".join(f"{item.path}\t{item.kind}\t{item.reason}\n" for item in skipped)
    write_atomically(listing, lambda path: path.write_text(lines))
    logger.info("%s; skipped %d unusable files, listed in %s", summary, len(skipped), listing)


def image_paths(input_dir: str | Path) -> list[Path]:
    """Every file with an image suffix in ``input_dir`` (not recursive, hidden files left out),
    sorted by name.

    Raises:
        FileNotFoundError: ``input_dir`` is not a folder.
        ValueError: it holds no image, or two images would write the same output files.
    """
    folder = Path(input_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"input_dir {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and image_suffix(p))
    if not files:
        raise ValueError(f"input_dir {folder}: no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    by_stem: dict[str, Path] = {}
    for path in files:
        if stem(path) in by_stem:
            raise ValueError(f"{path} and {by_stem[stem(path)]} would write the same output files")
        by_stem[stem(path)] = path
    return files


def contour(labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Foreground pixels with a 4-neighbour of another label, grown to ``thickness`` pixels
    (the overlays' outlines)."""
    edge = np.zeros(labels.shape, bool)
    padded = np.pad(labels, 1, mode="edge")
    for dx, dy in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dx : dx + labels.shape[0], dy : dy + labels.shape[1]] != labels
    edge &= labels > 0
    for _ in range(thickness - 1):
        grown = np.pad(edge, 1)
        edge = edge | grown[:-2, 1:-1] | grown[2:, 1:-1] | grown[1:-1, :-2] | grown[1:-1, 2:]
    return edge


def overlay_size(shape: tuple[int, ...], max_size: int) -> tuple[int, int]:
    """(H, W) of ``shape``'s first two axes, shrunk to a longest side of at most ``max_size``."""
    height, width = shape[:2]
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def draw_contours(picture: np.ndarray, prediction: np.ndarray, label: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 picture -> a copy with contours: ground truth green, prediction red.

    ``prediction`` and ``label`` are (h, w) label maps of any size; they are resized to the
    picture's size by nearest neighbour.
    """
    rgb = picture.copy()
    thickness = max(1, min(rgb.shape[:2]) // 200)
    for labels, colour in ((label, GROUND_TRUTH_COLOUR), (prediction, PREDICTION_COLOUR)):
        if labels is not None:
            rgb[contour(_nearest(labels, rgb.shape[:2]), thickness)] = colour
    return rgb


def _nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if labels.shape == size:
        return labels
    return np.asarray(Image.fromarray(labels).resize((size[1], size[0]), Image.Resampling.NEAREST))
