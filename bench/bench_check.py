"""The up-front check of an input folder: what decoding every file before the first image is
segmented costs, against reading headers alone (which misses truncated files).

    python bench/bench_check.py [--count 1000] [--size 1024x768] [--workers 0]

Run from the repository root. Writes ``--count`` generated JPEG photos (smooth skin tones with
a lesion and sensor noise, quality 90) into a temporary folder, then times over the folder:

- ``header``: ``Image.open`` and ``Image.verify``, all a header check reads of a JPEG;
- ``check``: :func:`scripts.image_files.find_unusable`, the bundle's check (a JPEG decoded at
  1/8 scale, every byte of its data read), on one thread and on ``--workers`` threads;
- ``full``: a full-size decode of every file (``Image.load``) on one thread.

Each is run twice and the faster run counts (the first warms the page cache).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.image_files import find_unusable


def write_photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:height, 0:width]
    paths = []
    for i in range(count):
        cy, cx, r = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width, rng.uniform(0.1, 0.3) * height
        lesion = np.clip(1.5 - np.hypot(rows - cy, cols - cx) / r, 0, 1)[..., None]
        skin = np.array([214, 160, 140]) * (1 - 0.6 * lesion) + rng.normal(0, 6, (height, width, 3))
        path = folder / f"photo_{i:04d}.jpg"
        Image.fromarray(np.clip(skin, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def header_only(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.verify()


def full_decode(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.load()


def best_of_two(work: Callable[[], object]) -> float:
    times = []
    for _ in range(2):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="photos in the folder")
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of each photo")
    parser.add_argument("--workers", type=int, default=0, help="threads of the parallel check (0: one per core)")
    args = parser.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp), args.count, width, height)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{args.count} JPEGs of {width}x{height} ({megabytes:.0f} MB)")
        rows = [
            ("header (open + verify), 1 thread", best_of_two(lambda: header_only(paths))),
            ("check (1/8-scale decode), 1 thread", best_of_two(lambda: find_unusable(paths, 1))),
            (f"check, {args.workers or 'one per core'} threads", best_of_two(lambda: find_unusable(paths, args.workers))),
            ("full decode, 1 thread", best_of_two(lambda: full_decode(paths))),
        ]
    for name, seconds in rows:
        print(f"{name:40s} {seconds:6.2f} s  {1000 * seconds / args.count:6.2f} ms/image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
