"""``make_datalist``: from a dataset name and options to a checked, written datalist."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prepare.datalist import Datalist, build_datalist, require_free, write_datalist
from prepare.errors import PrepareError
from prepare.layouts import (
    IMAGE_EXTENSIONS,
    ISIC2017_FOLDERS,
    Pair,
    folder_pairs,
    isic2017_pairs,
    isic2018_pairs,
    isic_pairs,
    normal_extension,
    ph2_pairs,
    source_folder,
)
from prepare.splits import (
    DEFAULT_FRACTIONS,
    PAPER_SPLIT_SIZES,
    SPLIT_KEYS,
    Split,
    by_name,
    paper_split,
    random_split,
)
from prepare.synthetic import write_synthetic
from prepare.validate import validate_pairs

logger = logging.getLogger(__name__)

DATASETS = ("isic2017", "isic2018", "ph2", "folder", "synthetic")
#: The split rules each dataset accepts; the first is its default.
SPLITS = {
    "isic2017": ("paper", "official", "random"),
    "isic2018": ("paper", "random"),
    "ph2": ("paper", "random"),
    "folder": ("random",),
    "synthetic": ("random",),
}
DEFAULT_SEED = 42
SYNTHETIC_DEFAULT_SEED = 0
SYNTHETIC_DEFAULT_NUM_IMAGES = 300
SYNTHETIC_DEFAULT_SIZE = 256

PAIR_FINDERS: dict[str, Callable[[Path, str | None], list[Pair]]] = {
    "isic2017": isic2017_pairs,
    "isic2018": isic2018_pairs,
    "ph2": ph2_pairs,
    "folder": folder_pairs,
}

Shape = tuple[int, int]


@dataclass(frozen=True)
class Prepared:
    """A written datalist and what its summary reports."""

    path: Path
    datalist: Datalist
    smallest: Shape  #: (height, width) of the image with the fewest pixels
    largest: Shape  #: (height, width) of the image with the most pixels

    def summary(self) -> str:
        """The few lines the command prints on success."""
        counts = ", ".join(f"{key} {len(self.datalist[key])}" for key in SPLIT_KEYS)
        (sh, sw), (lh, lw) = self.smallest, self.largest
        return (
            f"wrote {self.path} (paths relative to {self.path.parent})\n"
            f"{counts}\n"
            f"image size (HxW): smallest {sh}x{sw}, largest {lh}x{lw}"
        )


def make_datalist(
    dataset: str,
    src: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    split_sizes: Sequence[int] | None = None,
    fractions: Sequence[float] | None = None,
    seed: int | None = None,
    num_images: int | None = None,
    size: int | None = None,
    overwrite: bool = False,
    workers: int = 1,
    mask_ext: str | None = None,
) -> Prepared:
    """Find, check and split a dataset, and write ``out/datalist.json``; see :mod:`prepare`.

    Args:
        dataset: one of :data:`DATASETS`.
        src: the folder the archive was unpacked into; ``None`` for ``synthetic``.
        out: the folder that receives the datalist (created if missing).
        split: ``paper``, ``official`` (ISIC2017) or ``random``; default: the first of
            ``SPLITS[dataset]``.
        split_sizes: (training, validation, test) counts replacing the paper's, for ``paper``.
        fractions: (training, validation, test) fractions for ``random``; default 0.7, 0.1, 0.2.
        seed: seed of ``random`` (default 42) and of ``synthetic`` images (default 0).
        num_images, size: how many ``synthetic`` images of size x size pixels (300, 256).
        overwrite: replace an existing datalist (and earlier synthetic images).
        workers: threads that read files during validation.
        mask_ext: only masks with this extension (e.g. ``.bmp``) count, for archives
            that hold each mask in two formats.

    Raises:
        PrepareError: bad options or input; nothing has been written then, except
            synthetic images when writing the datalist itself fails.
    """
    if dataset not in DATASETS:
        raise PrepareError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    split = split or SPLITS[dataset][0]
    _check_options(dataset, src, split, split_sizes, fractions, seed, num_images, size, workers, mask_ext)
    fractions = DEFAULT_FRACTIONS if fractions is None else tuple(fractions)
    out = Path(out)
    require_free(out, overwrite)
    if dataset == "synthetic":
        chosen, shapes = _split_synthetic(
            out,
            SYNTHETIC_DEFAULT_NUM_IMAGES if num_images is None else num_images,
            SYNTHETIC_DEFAULT_SIZE if size is None else size,
            SYNTHETIC_DEFAULT_SEED if seed is None else seed,
            fractions,
            overwrite,
        )
    else:
        seed = DEFAULT_SEED if seed is None else seed
        chosen, shapes = _split_source(dataset, source_folder(src), split, split_sizes, fractions, seed, workers, mask_ext)
    datalist = build_datalist(chosen, out)
    path = write_datalist(datalist, out, overwrite)
    by_area = sorted(shapes, key=lambda hw: (hw[0] * hw[1], hw))
    return Prepared(path, datalist, by_area[0], by_area[-1])


def _check_options(
    dataset: str,
    src: object,
    split: str,
    split_sizes: Sequence[int] | None,
    fractions: Sequence[float] | None,
    seed: int | None,
    num_images: int | None,
    size: int | None,
    workers: int,
    mask_ext: str | None,
) -> None:
    """Refuse options that do not apply or are out of range, rather than silently ignore them."""
    synthetic = dataset == "synthetic"
    misuses = [
        (synthetic and src is not None, "synthetic generates its images and takes no --src"),
        (not synthetic and src is None, f"{dataset} needs --src, the folder the archive was unpacked into"),
        (
            split not in SPLITS[dataset],
            f"--split {split} is not available for {dataset}; choose from {', '.join(SPLITS[dataset])}",
        ),
        (split_sizes is not None and split != "paper", "--split-sizes only applies to --split paper"),
        (fractions is not None and split != "random", "--fractions only applies to --split random"),
        (seed is not None and split != "random", "--seed only applies to --split random and to synthetic"),
        (not synthetic and (num_images, size) != (None, None), "--num-images and --size only apply to synthetic"),
        (
            split_sizes is not None and (len(split_sizes) != 3 or min(split_sizes) < 0),
            "--split-sizes needs three counts >= 0: TRAIN VAL TEST",
        ),
        (
            fractions is not None and (len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6),
            "--fractions needs three fractions >= 0 that add up to 1: TRAIN VAL TEST",
        ),
        (seed is not None and seed < 0, "--seed must be >= 0"),
        (workers < 1, "--workers must be at least 1"),
        (synthetic and mask_ext is not None, "synthetic writes its own masks and takes no --mask-ext"),
        (
            mask_ext is not None and normal_extension(mask_ext) not in IMAGE_EXTENSIONS,
            f"--mask-ext {mask_ext} is not an image extension; choose from {', '.join(sorted(IMAGE_EXTENSIONS))}",
        ),
    ]
    for misused, message in misuses:
        if misused:
            raise PrepareError(message)


def _split_synthetic(
    out: Path, num_images: int, size: int, seed: int, fractions: Sequence[float], overwrite: bool
) -> tuple[Split, list[Shape]]:
    """Generate the synthetic set into ``out`` and split it with the generation seed."""
    pairs = write_synthetic(out, num_images, size, seed, overwrite)
    return random_split(pairs, fractions, seed), [(size, size)] * len(pairs)


def _split_source(
    dataset: str,
    src: Path,
    split: str,
    split_sizes: Sequence[int] | None,
    fractions: Sequence[float],
    seed: int,
    workers: int,
    mask_ext: str | None,
) -> tuple[Split, list[Shape]]:
    """The split of an archive or folder, and the shape of every image, after checking all files."""
    if split == "official":
        official = {key: isic_pairs(src, *ISIC2017_FOLDERS[key], mask_ext) for key in SPLIT_KEYS}
        shapes = validate_pairs([pair for key in SPLIT_KEYS for pair in official[key]], workers)
        return {key: by_name(pairs) for key, pairs in official.items()}, shapes
    pairs = PAIR_FINDERS[dataset](src, mask_ext)
    logger.info("found %d image/mask pairs in %s", len(pairs), src)
    if split == "paper":
        sizes = tuple(split_sizes or PAPER_SPLIT_SIZES[dataset])
        # Counted before validation, which takes minutes on a full archive.
        _require_count(dataset, len(pairs), sizes, src, custom=split_sizes is not None)
        shapes = validate_pairs(pairs, workers)
        return paper_split(pairs, sizes), shapes
    shapes = validate_pairs(pairs, workers)
    return random_split(pairs, fractions, seed), shapes


def _require_count(dataset: str, found: int, sizes: Sequence[int], src: Path, custom: bool) -> None:
    """A fixed split needs exactly as many pairs as it distributes: more or fewer means a wrong folder."""
    if found == sum(sizes):
        return
    train, val, test = sizes
    if custom:
        raise PrepareError(f"--split-sizes {train} {val} {test} needs {sum(sizes)} images, found {found} in {src}")
    raise PrepareError(
        f"{dataset} paper split needs exactly {sum(sizes)} images ({train} training, {val} validation, "
        f"{test} test), found {found} in {src}; use --split-sizes TRAIN VAL TEST for a partial archive, "
        f"--split random, or check the archive"
    )
