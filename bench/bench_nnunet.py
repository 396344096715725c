"""Time per nnU-Net training epoch: nnU-Net's default network against UltraLight VM-UNet, on the CPU.

    python bench/bench_nnunet.py [--images 40 --size 256 --iterations 25 --epochs 4 --rounds 3]

Makes a synthetic 2D dataset in nnU-Net's raw format (RGB images of about ``--size`` pixels, one
dark lesion each), plans and preprocesses it with ``nnUNetv2_plan_and_preprocess`` and writes
UltraLight VM-UNet's plans with ``python -m networks.nnunet``: both networks then train on the
same preprocessed data, patch size aside (nnU-Net's, rounded down to a multiple of 32 for ours),
with the same batch size and nnU-Net's default trainer, deep supervision, data augmentation (one
worker, ``nnUNet_n_proc_DA=1``) and SGD, but ``--iterations`` training and a fifth as many
validation iterations per epoch instead of nnU-Net's 250 and 50. Each round trains each network
for ``--epochs`` epochs in turn (the order alternating, so that a drift in machine load hits both
alike) and keeps the epochs after the first (which starts the workers and builds the CPU scan).
The table gives the median over all kept epochs of nnU-Net's own epoch time (its training and
validation iterations) and their range, and the part of it spent in the training steps
(forward, loss, backward, optimizer; the rest is mostly waiting for augmented batches).
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from networks.nnunet import PLANS_NAME, SOURCE_PLANS

DATASET_ID, DATASET = "995", "Dataset995_BenchLesions"
NETWORKS = {"nnU-Net default (PlainConvUNet)": SOURCE_PLANS, "UltraLight VM-UNet": PLANS_NAME}
RUN_ENTRY_POINT = (
    "import sys; from importlib.metadata import entry_points; "
    "(command,) = entry_points(group='console_scripts', name=sys.argv[1]); "
    "sys.argv = sys.argv[1:]; sys.exit(command.load()())"
)


def make_dataset(raw: Path, images: int, size: int, seed: int = 0) -> None:
    """``images`` RGB PNGs of ``size`` +-10% pixels a side with 0/1 label PNGs, and dataset.json."""
    rng = np.random.default_rng(seed)
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    for case in range(images):
        h, w = (int(size * rng.uniform(0.9, 1.1)) for _ in range(2))
        yy, xx = np.mgrid[:h, :w]
        cy, cx, ry, rx = (
            rng.uniform(0.3, 0.7) * h,
            rng.uniform(0.3, 0.7) * w,
            rng.uniform(0.1, 0.3) * h,
            rng.uniform(0.1, 0.3) * w,
        )
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        image = np.where(mask[..., None], (110, 70, 60), (200, 160, 140)) + rng.normal(0, 20, (h, w, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(raw / "imagesTr" / f"case{case:03d}_0000.png")
        Image.fromarray(mask.astype(np.uint8)).save(raw / "labelsTr" / f"case{case:03d}.png")
    dataset = {"channel_names": {"0": "R", "1": "G", "2": "B"}, "labels": {"background": 0, "lesion": 1}}
    (raw / "dataset.json").write_text(json.dumps(dataset | {"numTraining": images, "file_ending": ".png"}))


def time_epochs(plans_name: str, epochs: int, iterations: int) -> dict[str, Any]:
    """Trains the 2d configuration of ``plans_name`` (fold 0): the seconds of its epochs after the first
    (``epoch``) and of their training steps (``steps``), and the network's size, batch and patch."""
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class BenchTrainer(nnUNetTrainer):
        def train_step(self, batch: dict) -> dict:
            start = time.perf_counter()
            result = super().train_step(batch)
            self.step_seconds[self.current_epoch] = self.step_seconds.get(self.current_epoch, 0.0) + time.perf_counter() - start
            return result

    folder = Path(nnUNet_preprocessed.get()) / DATASET
    plans = json.loads((folder / f"{plans_name}.json").read_text()) | {"continue_training": False}
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # nnU-Net's report of each step
        trainer = BenchTrainer(plans, "2d", 0, json.loads((folder / "dataset.json").read_text()), torch.device("cpu"))
        trainer.num_epochs, trainer.num_iterations_per_epoch = epochs, iterations
        trainer.num_val_iterations_per_epoch = max(1, iterations // 5)
        trainer.disable_checkpointing, trainer.step_seconds = True, {}
        trainer.run_training()
    starts, ends = (trainer.logger.get_value(key, step=None) for key in ("epoch_start_timestamps", "epoch_end_timestamps"))
    return {
        "epoch": [end - start for start, end in zip(starts[1:], ends[1:])],
        "steps": [trainer.step_seconds[e] for e in range(1, epochs)],
        "parameters": sum(p.numel() for p in trainer.network.parameters()),
        "batch": trainer.batch_size,
        "patch": "x".join(map(str, trainer.configuration_manager.patch_size)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=25, help="training iterations per epoch")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first is not timed")

    with tempfile.TemporaryDirectory() as work:
        # nnU-Net reads its folders from the environment, also in the processes it starts
        os.environ |= {
            "nnUNet_raw": f"{work}/raw",
            "nnUNet_preprocessed": f"{work}/preprocessed",
            "nnUNet_results": f"{work}/results",
            "nnUNet_n_proc_DA": "1",
            "nnUNet_def_n_proc": "1",
        }
        make_dataset(Path(work) / "raw" / DATASET, args.images, args.size)
        for command in (
            [
                sys.executable,
                "-c",
                RUN_ENTRY_POINT,
                "nnUNetv2_plan_and_preprocess",
                "-d",
                DATASET_ID,
                "-c",
                "2d",
                "-npfp",
                "1",
                "-np",
                "1",
            ],
            [sys.executable, "-m", "networks.nnunet", DATASET],
        ):
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in NETWORKS}
        for round_ in range(args.rounds):
            order = list(NETWORKS) if round_ % 2 == 0 else list(NETWORKS)[::-1]
            for name in order:
                runs[name].append(time_epochs(NETWORKS[name], args.epochs, args.iterations))
                print(f"round {round_ + 1}/{args.rounds}: {name} done", file=sys.stderr)

    print(
        f"{args.images} images of about {args.size} px, {args.iterations} training + {max(1, args.iterations // 5)} "
        f"validation iterations per epoch, {args.rounds} rounds x {args.epochs - 1} timed epochs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print("| network | parameters | patch | batch | s per epoch | range | of which training steps |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, rounds in runs.items():
        epoch, steps = ([t for run in rounds for t in run[key]] for key in ("epoch", "steps"))
        first = rounds[0]
        print(
            f"| {name} | {first['parameters']:,} | {first['patch']} | {first['batch']} "
            f"| {statistics.median(epoch):.2f} | {min(epoch):.2f}-{max(epoch):.2f} | {statistics.median(steps):.2f} |"
        )


if __name__ == "__main__":
    main()
