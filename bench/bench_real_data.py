"""The bundle on real dermoscopy: fine-tuning from the shipped weights, and our network
against MONAI's UNet and SegResNet at the same wall-clock budget.

    python bench/bench_real_data.py finetune --ph2 DATA/ph2 [--epochs 5 --folds 5]
    python bench/bench_real_data.py networks --isic2018 DATA/isic2018 [--budget 480]

Both drive the bundle's own commands (``configs/train.yaml``, ``configs/evaluate.yaml``) from
the bundle root in fresh processes, into a temporary folder, and print a Markdown table.

- ``finetune``: PH2 in ``--folds`` folds (image i goes to fold i mod folds, by sorted name).
  For each fold: the shipped ``models/model.pt`` as it is; ``--epochs`` epochs of training
  from it (``--ckpt_path models/model.pt``); the same epochs from scratch. Training uses the
  other folds and no validation split (the last epoch's weights are kept); the pooled test
  DSC of each fold through ``evaluate.yaml`` is reported as mean and spread over folds.
- ``networks``: each network trains on the ISIC 2018 split of ``DATA/isic2018`` (its
  ``datalist.json`` from ``python -m prepare isic2018``) with the bundle's protocol until
  ``--budget`` seconds of wall-clock time have passed (the run is then interrupted; the
  weights of the best validation DSC so far are kept), and is evaluated on the test split.
  The other networks enter through ``--network_def``, as a user swaps them in.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundle"

#: MONAI networks swapped in with --network_def, sized as MONAI's tutorials size them for 2D.
NETWORKS: dict[str, dict | None] = {
    "UltraLightVMUNet (ours)": None,
    "MONAI UNet": {
        "_target_": "monai.networks.nets.UNet",
        "spatial_dims": 2,
        "in_channels": 3,
        "out_channels": 1,
        "channels": [16, 32, 64, 128, 256],
        "strides": [2, 2, 2, 2],
        "num_res_units": 2,
    },
    "MONAI SegResNet": {
        "_target_": "monai.networks.nets.SegResNet",
        "spatial_dims": 2,
        "in_channels": 3,
        "out_channels": 1,
        "init_filters": 16,
    },
}


def bundle(*args: str, timeout: float | None = None) -> tuple[float, str]:
    """Run ``python -m monai.bundle ARGS`` in the bundle root; (seconds, log). A timeout interrupts it."""
    command = [sys.executable, "-m", "monai.bundle", *args]
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=BUNDLE, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # as Ctrl-C: the saved files stay complete
            code = process.wait()
            code = 0 if timeout is not None else code
        log.seek(0)
        text = log.read()
    if code != 0:
        raise SystemExit(f"error: {' '.join(command)} exited with {code}:\n{text[-3000:]}")
    return time.monotonic() - start, text


def pooled_dsc(eval_dir: Path) -> float:
    with open(eval_dir / "metrics.csv") as file:
        return {row[0]: float(row[1]) for row in csv.reader(file)}["dsc"]


def write_datalist(folder: Path, training: list, validation: list, test: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lists = {"training": training, "validation": validation, "test": test}
    (folder / "datalist.json").write_text(json.dumps(lists, indent=1))
    return folder


def absolute_entries(dataset_dir: Path, key: str) -> list[dict[str, str]]:
    entries = json.loads((dataset_dir / "datalist.json").read_text())[key]
    return [{k: str((dataset_dir / v).resolve()) for k, v in entry.items()} for entry in entries]


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def finetune(args: argparse.Namespace, work: Path) -> None:
    cases = sorted(absolute_entries(args.ph2, "test"), key=lambda e: Path(e["image"]).name)
    weights = str((BUNDLE / "models" / "model.pt").resolve())
    #: start -> (run folder name, --ckpt_path of the training; None: no training)
    starts = {
        "shipped weights, no training": ("shipped", None),
        "from the shipped weights": ("finetuned", ["--ckpt_path", weights]),
        "from scratch": ("scratch", []),
    }
    scores: dict[str, list[float]] = {name: [] for name in starts}
    cache = str(work / "cache")
    for fold in range(args.folds):
        test = cases[fold :: args.folds]
        training = [c for i, c in enumerate(cases) if i % args.folds != fold]
        # the validation list only satisfies the datalist check: training runs without one (below)
        data = write_datalist(work / f"fold{fold}", training, test, test)
        for name, (folder, start) in starts.items():
            out = work / f"fold{fold}-{folder}"
            ckpt = weights
            if start is not None:
                settings = ["--dataset_dir", str(data), "--output_dir", str(out), "--cache_dir", cache]
                settings += ["--validate#dataset#data", "[]"]  # no validation split: the last epoch is kept
                bundle(
                    "run", "training", "--config_file", "configs/train.yaml", *settings, "--num_epochs", str(args.epochs), *start
                )
                ckpt = str(out / "model.pt")
            evaluation = ["--dataset_dir", str(data), "--ckpt_path", ckpt, "--output_dir", str(out / "eval")]
            bundle("run", "--config_file", "configs/evaluate.yaml", *evaluation, "--overlay_max_size", "0")
            scores[name].append(pooled_dsc(out / "eval"))
            print(f"fold {fold}: {name}: DSC {scores[name][-1]:.4f}", file=sys.stderr, flush=True)
    print(f"PH2, {args.folds} folds ({len(training)} training / {len(test)} test images each), {args.epochs} epochs\n")
    print("| start | pooled test DSC, mean over folds (min-max) |\n| --- | --- |")
    for name, values in scores.items():
        print(f"| {name} | {spread(values)} |")


def parameters(network_def: dict | None) -> int:
    """The parameter count of train.yaml's network, or of ``network_def`` in its place."""
    parser = ConfigParser()
    parser.read_config(BUNDLE / "configs" / "train.yaml")
    if network_def is not None:
        parser["network_def"] = network_def
    network = parser.get_parsed_content("network_def")
    return sum(p.numel() for p in network.parameters())


def networks(args: argparse.Namespace, work: Path) -> None:
    rows = []
    for name, network_def in NETWORKS.items():
        out = work / re.sub(r"\W+", "_", name)
        override = ["--network_def", json.dumps(network_def)] if network_def else []
        settings = ["--dataset_dir", str(args.isic2018.resolve()), "--output_dir", str(out), *override]
        _, log = bundle(
            "run", "training", "--config_file", "configs/train.yaml", *settings, "--num_epochs", "1000", timeout=args.budget
        )
        (out / "train.log").write_text(log)
        epochs = [float(s) for s in re.findall(r"epoch \d+/1000: .*?, ([0-9.]+) s,", log)]
        if not epochs:  # no epoch in the budget: no weights to evaluate, and that is the result
            rows.append((name, parameters(network_def), float("nan"), 0, float("nan")))
            print(f"{name}: no epoch within {args.budget} s", file=sys.stderr, flush=True)
            continue
        evaluation = ["--dataset_dir", str(args.isic2018.resolve()), "--ckpt_path", str(out / "model.pt")]
        bundle(
            "run",
            "--config_file",
            "configs/evaluate.yaml",
            *evaluation,
            "--output_dir",
            str(out / "eval"),
            "--overlay_max_size",
            "0",
            *override,
        )
        rows.append(
            (name, parameters(network_def), statistics.median(epochs[1:] or epochs), len(epochs), pooled_dsc(out / "eval"))
        )
        print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    print(
        f"ISIC 2018 paper split, {args.budget} s of training each (torch {torch.__version__}, {torch.get_num_threads()} threads)\n"
    )
    print("| network | parameters | s / epoch (median) | epochs in the budget | test DSC (pooled) |")
    print("| --- | --- | --- | --- | --- |")
    for name, count, seconds, done, dsc in rows:
        print(f"| {name} | {count:,} | {seconds:.1f} | {done} | {dsc:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    sections = parser.add_subparsers(dest="section", required=True)
    ft = sections.add_parser("finetune", help="PH2 folds: from the shipped weights vs from scratch")
    ft.add_argument("--ph2", type=Path, required=True, help="folder of `python -m prepare ph2`'s datalist.json")
    ft.add_argument("--epochs", type=int, default=5)
    ft.add_argument("--folds", type=int, default=5)
    nets = sections.add_parser("networks", help="ours vs MONAI UNet and SegResNet at one wall-clock budget")
    nets.add_argument("--isic2018", type=Path, required=True, help="folder of `python -m prepare isic2018`'s datalist.json")
    nets.add_argument("--budget", type=float, default=480.0, help="seconds of training per network")
    parser.add_argument("--work", type=Path, help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        (finetune if args.section == "finetune" else networks)(args, work)


if __name__ == "__main__":
    main()
