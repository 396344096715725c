"""Where each supported archive keeps its images and masks, and how they pair up.

Only names are looked at here; :mod:`prepare.validate` opens the files.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from networks.files import IMAGE_SUFFIXES, image_suffix
from networks.files import stem as file_stem
from prepare.errors import PrepareError, list_files

logger = logging.getLogger(__name__)

#: the project's one list of image suffixes (the bundle reads the same files)
IMAGE_EXTENSIONS = frozenset(IMAGE_SUFFIXES)

#: Image and mask folders of the ISIC 2017 archives, per official subset.
ISIC2017_FOLDERS = {
    "training": ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),
    "validation": ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),
    "test": ("ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth"),
}
ISIC2018_FOLDERS = ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth")
ISIC_MASK_SUFFIXES = ("_segmentation",)
# The ISIC 2017 training folder ships superpixel maps next to the photographs.
ISIC_SUPERPIXEL_SUFFIX = "_superpixels"

PH2_IMAGES_FOLDER = "PH2 Dataset images"
PH2_IMAGE_GLOB = "*/*_Dermoscopic_Image"
PH2_MASK_GLOB = "*/*_lesion"
PH2_MASK_SUFFIXES = ("_lesion",)

FOLDER_IMAGES, FOLDER_MASKS = "images", "masks"
FOLDER_MASK_SUFFIXES = ("", "_segmentation", "_mask", "_lesion")


@dataclass(frozen=True)
class Pair:
    """One image and its lesion mask."""

    image: Path
    label: Path


def source_folder(src: str | Path) -> Path:
    """``src`` as a Path, refused unless it is an existing folder."""
    path = Path(src)
    if not path.is_dir():
        raise PrepareError(f"--src {path} is not an existing folder")
    return path


def normal_extension(extension: str) -> str:
    """``extension`` as compared with file suffixes: lower case with its dot (``BMP`` -> ``.bmp``)."""
    extension = extension.lower()
    return extension if extension.startswith(".") else f".{extension}"


def image_files(folder: Path, extension: str | None = None) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; only ``extension`` ones if given.

    Hidden files are skipped: archives unpacked on macOS carry ``._NAME`` copies
    that have an image extension but hold resource forks.
    """
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    allowed = {normal_extension(extension)} if extension else IMAGE_EXTENSIONS
    images = sorted(p for p in files if image_suffix(p) in allowed)
    if len(images) < len(files):
        logger.debug("ignoring %d non-image files in %s", len(files) - len(images), folder)
    return images


def subfolder(src: Path, name: str) -> Path:
    """``src/name``, or an error that says what was expected and what is there."""
    path = src / name
    if not path.is_dir():
        found = sorted(p.name for p in src.iterdir())
        listing = list_files(found) if found else "nothing"
        raise PrepareError(f"expected a folder '{name}' in {src}; found {listing}")
    return path


def match_pairs(
    images: Iterable[Path], masks: Iterable[Path], suffixes: Sequence[str], mask_ext: str | None = None
) -> list[Pair]:
    """Pair each image with the mask named ``<image stem><suffix>.<image extension>``.

    Every image needs exactly one mask and every mask exactly one image. All
    mismatches are reported in one error so that the archive can be fixed in one go.
    """
    image_by_stem, image_clashes = _index_by_stem(images)
    mask_by_stem, mask_clashes = _index_by_stem(masks)
    pairs, lonely_images, ambiguous = [], [], []
    for stem, image in sorted(image_by_stem.items()):
        candidates = [mask_by_stem[stem + s] for s in suffixes if stem + s in mask_by_stem]
        if not candidates:
            lonely_images.append(image)
        elif len(candidates) > 1:
            ambiguous.append(f"{image} <- {' | '.join(c.name for c in candidates)}")
        else:
            pairs.append(Pair(image, candidates[0]))
    claimed = {m for stem in image_by_stem for s in suffixes if (m := mask_by_stem.get(stem + s))}
    lonely_masks = sorted(set(mask_by_stem.values()) - claimed)
    shared = sorted(m for m, n in Counter(p.label for p in pairs).items() if n > 1)

    findings = [
        (image_clashes, "images that share a name apart from the extension"),
        (mask_clashes, "masks that share a name apart from the extension"),
        (lonely_images, "images without a mask"),
        (lonely_masks, "masks without an image"),
        (ambiguous, "images with several candidate masks"),
        (shared, "masks that match several images"),
    ]
    problems = [f"{what} {list_files(files)}" for files, what in findings if files]
    if problems:
        rule = " or ".join(f"STEM{s}.EXT" for s in suffixes)
        problems.append(f"(masks pair with images by name: image STEM.EXT takes mask {rule}, any image EXT)")
        if mask_clashes and mask_ext is None:
            extensions = sorted({image_suffix(name) or "" for clash in mask_clashes for name in clash.split(" and ")})
            problems.append(
                f"(each mask exists as {' and '.join(extensions)}: choose one with --mask-ext, e.g. --mask-ext {extensions[0]})"
            )
        raise PrepareError("\n".join(problems))
    return pairs


def _index_by_stem(files: Iterable[Path]) -> tuple[dict[str, Path], list[str]]:
    """Map each file stem to its first file; stems held by several files are also returned as clashes."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_stem[file_stem(path)].append(path)
    clashes = [" and ".join(map(str, paths)) for _, paths in sorted(by_stem.items()) if len(paths) > 1]
    # A clashing stem still maps to one file, so that its mask is not also reported as lonely.
    return {stem: paths[0] for stem, paths in by_stem.items()}, clashes


def isic_pairs(src: Path, image_folder: str, mask_folder: str, mask_ext: str | None = None) -> list[Pair]:
    """Pairs of one ISIC image folder and its ground-truth folder, both directly in ``src``."""
    image_dir, mask_dir = subfolder(src, image_folder), subfolder(src, mask_folder)
    images = [p for p in image_files(image_dir) if not file_stem(p).endswith(ISIC_SUPERPIXEL_SUFFIX)]
    if not images:
        raise PrepareError(f"no images in {image_dir}")
    return match_pairs(images, image_files(mask_dir, mask_ext), ISIC_MASK_SUFFIXES, mask_ext)


def isic2017_pairs(src: Path, mask_ext: str | None = None) -> list[Pair]:
    """Pairs of the ISIC 2017 training set, the pool of the paper's split."""
    return isic_pairs(src, *ISIC2017_FOLDERS["training"], mask_ext)


def isic2018_pairs(src: Path, mask_ext: str | None = None) -> list[Pair]:
    """Pairs of the ISIC 2018 Task 1 training set, the pool of the paper's split."""
    return isic_pairs(src, *ISIC2018_FOLDERS, mask_ext)


def ph2_root(src: Path) -> Path:
    """The folder that holds the PH2 case folders: ``src`` itself or its 'PH2 Dataset images'."""
    if (src / PH2_IMAGES_FOLDER).is_dir():
        return src / PH2_IMAGES_FOLDER
    if any(src.glob(PH2_IMAGE_GLOB)):
        return src
    raise PrepareError(
        f"expected {src} to be the '{PH2_IMAGES_FOLDER}' folder (holding IMDxxx case folders) "
        f"or the folder above it, but it holds neither"
    )


def ph2_pairs(src: Path, mask_ext: str | None = None) -> list[Pair]:
    """Pairs of every PH2 case: ``IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp`` with its lesion mask."""
    root = ph2_root(src)
    images = [f for d in sorted(root.glob(PH2_IMAGE_GLOB)) if d.is_dir() for f in image_files(d)]
    masks = [f for d in sorted(root.glob(PH2_MASK_GLOB)) if d.is_dir() for f in image_files(d, mask_ext)]
    if not images:
        raise PrepareError(f"no PH2 cases in {root}: expected IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp")
    return match_pairs(images, masks, PH2_MASK_SUFFIXES, mask_ext)


def folder_pairs(src: Path, mask_ext: str | None = None) -> list[Pair]:
    """Pairs of ``src/images`` and ``src/masks``, matched by file stem."""
    image_dir, mask_dir = subfolder(src, FOLDER_IMAGES), subfolder(src, FOLDER_MASKS)
    images = image_files(image_dir)
    if not images:
        raise PrepareError(f"no images in {image_dir}")
    return match_pairs(images, image_files(mask_dir, mask_ext), FOLDER_MASK_SUFFIXES, mask_ext)
