"""The ``python -m prepare`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import prepare
from prepare.errors import PrepareError
from prepare.make import (
    DATASETS,
    DEFAULT_SEED,
    SYNTHETIC_DEFAULT_NUM_IMAGES,
    SYNTHETIC_DEFAULT_SEED,
    SYNTHETIC_DEFAULT_SIZE,
    make_datalist,
)
from prepare.splits import DEFAULT_FRACTIONS

LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; its help is the package documentation."""
    title, _, guide = (prepare.__doc__ or "").partition("\n")
    parser = argparse.ArgumentParser(
        prog="python -m prepare",
        description=title,
        epilog=guide,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=DATASETS, metavar="DATASET", help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument(
        "--src", type=Path, metavar="DIR", help="folder the archive was unpacked into (layouts below); not for synthetic"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        required=True,
        help="folder for datalist.json, created if missing; the paths in it are relative to it",
    )
    parser.add_argument(
        "--split",
        choices=("paper", "official", "random"),
        help="split rule (default: paper for isic2017, isic2018 and ph2; random otherwise)",
    )
    parser.add_argument(
        "--split-sizes",
        type=int,
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        help="counts replacing the paper's for --split paper; they must add up to the number of images",
    )
    parser.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        help=f"fractions for --split random, adding up to 1 (default: {' '.join(map(str, DEFAULT_FRACTIONS))})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help=f"seed of --split random (default {DEFAULT_SEED}) "
        f"and of the synthetic images and split (default {SYNTHETIC_DEFAULT_SEED})",
    )
    parser.add_argument(
        "--num-images", type=int, metavar="N", help=f"synthetic: number of images (default {SYNTHETIC_DEFAULT_NUM_IMAGES})"
    )
    parser.add_argument(
        "--size", type=int, metavar="PX", help=f"synthetic: image width and height in pixels (default {SYNTHETIC_DEFAULT_SIZE})"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUT/datalist.json (for synthetic also earlier synthetic_*.png)",
    )
    parser.add_argument(
        "--mask-ext",
        metavar="EXT",
        help="only masks with this extension count (e.g. .bmp), for copies that hold each mask twice",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=min(4, os.cpu_count() or 1),
        help="threads that read files during the checks (default: CPUs, at most 4; here %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log details to stderr; twice for debug messages")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=LOG_LEVELS[min(args.verbose, 2)], format="%(levelname)s: %(message)s")
    try:
        prepared = make_datalist(
            args.dataset,
            args.src,
            args.out,
            split=args.split,
            split_sizes=args.split_sizes,
            fractions=args.fractions,
            seed=args.seed,
            num_images=args.num_images,
            size=args.size,
            overwrite=args.overwrite,
            workers=args.workers,
            mask_ext=args.mask_ext,
        )
    # OSError too: a full disk or a read-only OUT deserves a message, not a traceback.
    except (PrepareError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(prepared.summary())
    return 0
