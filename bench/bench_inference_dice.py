"""Score the bundle's inference config against ground truth, at each image's original size.

    python bench/bench_inference_dice.py --dataset_dir DATA/ph2 [--key test] [--work DIR] [-- BUNDLE OPTIONS]

What a user gets from ``configs/inference.yaml`` is what this measures: the images of one
split of a ``datalist.json`` (from ``python -m prepare``) are linked into one folder, the
inference config segments that folder in a fresh process from the bundle root (options after
``--`` go to it, e.g. ``-- --ckpt_path runs/model.pt``), and each written mask is compared with
its label file as stored. Prints the DSC pooled over all pixels, the mean, median and minimum
of the per-image Dice, and how many images score below 0.5, with the five worst named.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from networks.files import stem

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundle"
MASK_SUFFIX = "_mask"


def foreground(path: Path) -> np.ndarray:
    """A mask file as booleans: lesion where the grey level is above half its range (0/1 or 0/255)."""
    with Image.open(path) as image:
        values = np.asarray(image.convert("L") if image.mode not in ("L", "1", "I", "I;16") else image)
    return values > (0 if values.max() <= 1 else 127)


def main() -> None:
    argv = sys.argv[1:]
    bundle_options = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--dataset_dir", type=Path, required=True, help="folder holding datalist.json")
    parser.add_argument("--key", default="test", help="the split to score (default test)")
    parser.add_argument("--work", type=Path, help="keep the linked images and masks here (default: a temporary folder)")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    cases = json.loads((args.dataset_dir / "datalist.json").read_text())[args.key]
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        images, predictions = work / "images", work / "predictions"
        images.mkdir(parents=True, exist_ok=True)
        labels = {}
        for case in cases:
            image = (args.dataset_dir / case["image"]).resolve()
            link = images / image.name
            if not link.exists():
                link.symlink_to(image)
            labels[stem(image)] = (args.dataset_dir / case["label"]).resolve()
        command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.yaml"]
        command += ["--input_dir", str(images), "--output_dir", str(predictions), "--mask_suffix", MASK_SUFFIX]
        start = time.monotonic()
        subprocess.run([*command, *bundle_options], cwd=BUNDLE, check=True)
        seconds = time.monotonic() - start
        dice, intersection, total = {}, 0, 0
        for name, label in labels.items():
            truth, predicted = foreground(label), foreground(predictions / f"{name}{MASK_SUFFIX}.png")
            if truth.shape != predicted.shape:
                raise SystemExit(f"error: {name}: mask {predicted.shape} and label {truth.shape} differ in size")
            overlap, size = int((truth & predicted).sum()), int(truth.sum() + predicted.sum())
            dice[name] = 2 * overlap / size if size else 1.0
            intersection, total = intersection + overlap, total + size
    values = list(dice.values())
    worst = sorted(dice.items(), key=lambda item: item[1])[:5]
    print(
        f"{len(values)} images of '{args.key}' in {args.dataset_dir}, inference.yaml {' '.join(bundle_options)}: {seconds:.0f} s"
    )
    print(f"pooled DSC {2 * intersection / total:.4f}")
    print(f"per-image Dice: mean {statistics.mean(values):.4f}, median {statistics.median(values):.4f}, min {min(values):.4f}")
    print(f"below 0.5: {sum(v < 0.5 for v in values)}")
    print("worst: " + ", ".join(f"{name} {value:.3f}" for name, value in worst))


if __name__ == "__main__":
    main()
