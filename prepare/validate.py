"""Checks that every image and mask can be trained on, before anything is written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from networks.files import is_nifti, strict_decoding
from prepare.errors import PrepareError, list_files
from prepare.layouts import Pair

UNREADABLE = "unreadable or truncated files"
SIZE_MISMATCH = "images whose mask has another size"
NOT_GREY = "masks whose colour channels differ"
NOT_BINARY = "masks that are not binary (accepted: values within {0, 255} or within {0, 1})"
PROBLEM_ORDER = (UNREADABLE, SIZE_MISMATCH, NOT_GREY, NOT_BINARY)
BINARY_VALUE_SETS = (frozenset({0, 255}), frozenset({0, 1}))
SHOWN_VALUES = 4  # from each end of the sorted values: the extremes say most about a bad mask


class PairProblem(Exception):
    """Why one pair is unusable: a kind from :data:`PROBLEM_ORDER` and a detail naming the file."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind, detail)
        self.kind, self.detail = kind, detail


def read_nifti(path: Path) -> Image.Image:
    """The first plane of a 2D NIfTI file as a one-band image, rows and columns as the bundle
    reads them (NIfTI's first axis is x, the width); reading all voxels exposes truncation."""
    try:
        data = np.squeeze(np.asanyarray(nib.load(str(path)).dataobj))
    except Exception as exc:
        raise PairProblem(UNREADABLE, f"{path} ({exc})") from exc
    if data.ndim not in (2, 3):
        raise PairProblem(UNREADABLE, f"{path} (shape {data.shape}: not a 2D image)")
    plane = np.ascontiguousarray((data if data.ndim == 2 else data[..., 0]).T)
    if np.issubdtype(plane.dtype, np.integer):
        plane = plane.astype(np.uint8 if plane.min() >= 0 and plane.max() <= 255 else np.int32)
    return Image.fromarray(plane if plane.dtype != np.float64 else plane.astype(np.float32))


def read_image(path: Path) -> Image.Image:
    """The fully decoded image at ``path`` as viewers display it (its EXIF orientation applied,
    as the bundle reads images and masks); decoding everything is what exposes truncated files."""
    if is_nifti(path):
        return read_nifti(path)
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    # PIL signals corrupt data with many exception types (OSError, SyntaxError,
    # struct.error, DecompressionBombError, ...): any of them makes the file unusable.
    except Exception as exc:
        raise PairProblem(UNREADABLE, f"{path} ({exc})") from exc


def grey_levels(path: Path, mask: Image.Image) -> np.ndarray:
    """The mask as a 2-D array; a colour mask is accepted only when its colour channels agree."""
    values = np.asarray(mask)
    if values.ndim == 2:
        return values
    colour = values[..., [i for i, band in enumerate(mask.getbands()) if band != "A"]]
    if (colour != colour[..., :1]).any():
        raise PairProblem(NOT_GREY, str(path))
    return colour[..., 0]


def distinct_values(grey: np.ndarray) -> list[int]:
    """Sorted distinct values of ``grey``; bincount is much faster than np.unique on 8-bit masks."""
    if grey.dtype == np.uint8:
        return np.flatnonzero(np.bincount(grey.ravel(), minlength=256)).tolist()
    return np.unique(grey).tolist()


def require_binary(path: Path, mask: Image.Image) -> None:
    """Refuse a mask with values other than 0 and 255, or other than 0 and 1."""
    values = distinct_values(grey_levels(path, mask))
    if not any(set(values) <= allowed for allowed in BINARY_VALUE_SETS):
        ends = values if len(values) <= 2 * SHOWN_VALUES else [*values[:SHOWN_VALUES], "...", *values[-SHOWN_VALUES:]]
        shown = ", ".join(map(str, ends))
        raise PairProblem(NOT_BINARY, f"{path} has {len(values)} values: {shown}")


def check_pair(pair: Pair) -> tuple[int, int]:
    """Read both files of ``pair`` fully, check they fit together, and return the image's (height, width)."""
    image, mask = read_image(pair.image), read_image(pair.label)
    if image.size != mask.size:
        detail = f"{pair.image} is {image.height}x{image.width}, {pair.label} is {mask.height}x{mask.width}"
        if image.size == mask.size[::-1]:
            detail += " as displayed: turn the mask as the image's EXIF orientation turns it"
        raise PairProblem(SIZE_MISMATCH, detail)
    require_binary(pair.label, mask)
    return image.height, image.width


def _check_or_problem(pair: Pair) -> tuple[int, int] | PairProblem:
    """:func:`check_pair`, with its problem returned instead of raised so all pairs get checked."""
    try:
        return check_pair(pair)
    except PairProblem as problem:
        return problem


def validate_pairs(pairs: Sequence[Pair], workers: int = 1) -> list[tuple[int, int]]:
    """Check every pair and return the (height, width) of each image.

    Raises one :class:`PrepareError` listing every problem found, grouped by kind.
    Threads help because PIL releases the GIL while decoding.
    """
    with strict_decoding(), ThreadPoolExecutor(max_workers=workers) as pool:
        checks = pool.map(_check_or_problem, pairs)
        results = list(tqdm(checks, total=len(pairs), desc="checking files", unit="pair", disable=None))
    problems: dict[str, list[str]] = defaultdict(list)
    for result in results:
        if isinstance(result, PairProblem):
            problems[result.kind].append(result.detail)
    if problems:
        lines = [f"{kind} {list_files(problems[kind])}" for kind in PROBLEM_ORDER if kind in problems]
        bad = sum(map(len, problems.values()))
        raise PrepareError(f"{bad} of {len(pairs)} image/mask pairs are unusable:\n" + "\n".join(lines))
    return [result for result in results if not isinstance(result, PairProblem)]
