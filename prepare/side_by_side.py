"""Unpack side-by-side ISIC 2018 files into the official archive layout.

  python -m prepare.side_by_side --src DIR --out DIR [--overwrite]

Some public copies of ISIC 2018 Task 1 ship each case as one JPEG, ``ISIC_xxxxxxx_0.jpg``,
with the lesion mask in the left half and the dermoscopy photograph in the right half
(for example the 256x192 copy in the ``data/`` folder of AlifAshrafee/ISIC2018-Data-Cleaning).
This command finds every such file under ``--src`` (any sub-folder: a copy's own
train/valid/test folders are not the paper's split and are pooled), and writes

  OUT/ISIC2018_Task1-2_Training_Input/ISIC_xxxxxxx.png            the right half, RGB
  OUT/ISIC2018_Task1_Training_GroundTruth/ISIC_xxxxxxx_segmentation.png
                                                                   the left half, 0/255

the layout ``python -m prepare isic2018 --src OUT`` reads, so the paper's split by sorted
name follows. The mask half went through JPEG compression, so it is thresholded at 127
(grey levels above become 255). Both halves are stored losslessly as PNG: re-encoding the
photograph as JPEG would lose detail a second time.

Every file is checked before anything is written; one message names all unusable files
(unreadable, truncated, of odd width, an ISIC id found twice). The two
folders appear in OUT only once complete.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from networks.files import strict_decoding
from prepare.errors import PrepareError, list_files
from prepare.layouts import ISIC2018_FOLDERS, ISIC_MASK_SUFFIXES
from prepare.validate import PairProblem, read_image

logger = logging.getLogger(__name__)

#: ``ISIC_0000000_0.jpg``: the ISIC id, then the copy's own suffix.
SIDE_BY_SIDE_NAME = re.compile(r"^(ISIC_\d{7})(?:_\d+)?\.(?:jpe?g|png)$", re.IGNORECASE)
MASK_THRESHOLD = 127
NOT_SIDE_BY_SIDE = "files of odd width (not two halves)"
DUPLICATE_ID = "ISIC ids found in several files"


@dataclass(frozen=True)
class Unpacked:
    """What :func:`unpack_side_by_side` wrote."""

    image_dir: Path
    mask_dir: Path
    count: int


def find_side_by_side(src: Path) -> dict[str, Path]:
    """Every side-by-side file under ``src`` by ISIC id; an id in several files is refused."""
    found: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(src.rglob("*")):
        match = SIDE_BY_SIDE_NAME.match(path.name)
        if match and path.is_file() and not any(part.startswith(".") for part in path.relative_to(src).parts):
            found[match.group(1)].append(path)
    if not found:
        raise PrepareError(f"no side-by-side ISIC files (ISIC_xxxxxxx_0.jpg) under {src}")
    duplicates = [" and ".join(map(str, paths)) for paths in found.values() if len(paths) > 1]
    if duplicates:
        raise PrepareError(f"{DUPLICATE_ID} {list_files(duplicates)}")
    return {isic_id: paths[0] for isic_id, paths in sorted(found.items())}


def split_halves(path: Path) -> tuple[Image.Image, Image.Image]:
    """The (photograph, 0/255 mask) of one side-by-side file."""
    combined = read_image(path).convert("RGB")
    width, height = combined.size
    if width % 2:
        raise PairProblem(NOT_SIDE_BY_SIDE, f"{path} is {height}x{width}")
    half = width // 2
    mask_grey = np.asarray(combined.crop((0, 0, half, height)).convert("L"))
    mask = Image.fromarray(np.where(mask_grey > MASK_THRESHOLD, 255, 0).astype(np.uint8), mode="L")
    return combined.crop((half, 0, width, height)), mask


def _write_case(isic_id: str, path: Path, image_dir: Path, mask_dir: Path) -> PairProblem | None:
    """Split one file into the two folders; its problem is returned so that every file gets checked."""
    try:
        image, mask = split_halves(path)
    except PairProblem as problem:
        return problem
    image.save(image_dir / f"{isic_id}.png")
    mask.save(mask_dir / f"{isic_id}{ISIC_MASK_SUFFIXES[0]}.png")
    return None


def unpack_side_by_side(src: str | Path, out: str | Path, *, overwrite: bool = False, workers: int = 1) -> Unpacked:
    """Write the official ISIC 2018 layout into ``out`` from the side-by-side files under ``src``.

    Raises:
        PrepareError: no such files, unusable files (all named), or existing output folders
            without ``overwrite``; ``out`` is then left as it was.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise PrepareError(f"--src {src} is not an existing folder")
    targets = [out / name for name in ISIC2018_FOLDERS]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise PrepareError(f"{' and '.join(existing)} already exist; pass --overwrite to replace them")
    cases = find_side_by_side(src)
    out.mkdir(parents=True, exist_ok=True)
    # Written into a hidden folder beside the targets and moved in at the end, so that a
    # failed or interrupted run leaves no half-filled archive for `prepare isic2018` to read.
    with tempfile.TemporaryDirectory(prefix=".side_by_side.", dir=out) as staging:
        staged = [Path(staging) / name for name in ISIC2018_FOLDERS]
        for folder in staged:
            folder.mkdir()
        with strict_decoding(), ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda item: _write_case(*item, *staged), cases.items()))
        problems: dict[str, list[str]] = defaultdict(list)
        for problem in filter(None, results):
            problems[problem.kind].append(problem.detail)
        if problems:
            lines = [f"{kind} {list_files(details)}" for kind, details in sorted(problems.items())]
            bad = sum(map(len, problems.values()))
            raise PrepareError(f"{bad} of {len(cases)} side-by-side files are unusable:\n" + "\n".join(lines))
        for folder, target in zip(staged, targets):
            if target.exists():
                shutil.rmtree(target)
            folder.rename(target)
    return Unpacked(targets[0], targets[1], len(cases))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    title, _, guide = (__doc__ or "").partition("\n")
    parser = argparse.ArgumentParser(
        prog="python -m prepare.side_by_side",
        description=title,
        epilog=guide,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--src", type=Path, required=True, metavar="DIR", help="folder holding the side-by-side files")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder that receives the official layout")
    parser.add_argument("--overwrite", action="store_true", help="replace output folders from an earlier run")
    parser.add_argument("--workers", type=int, default=4, metavar="N", help="threads decoding files (default 4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        unpacked = unpack_side_by_side(args.src, args.out, overwrite=args.overwrite, workers=max(1, args.workers))
    except (PrepareError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {unpacked.count} images to {unpacked.image_dir} and their masks to {unpacked.mask_dir}\n"
        f"next: python -m prepare isic2018 --src {args.out} --out DATASET_DIR"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
