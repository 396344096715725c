"""The paper's ablation table from trained runs, from the bundle root:

    python commands/ablation_table.py runs/ablation/pvm1 runs/ablation/pvm2 runs/ablation/pvm4

Each argument is a training ``output_dir``: its ``model.pt`` and, in ``<run>/eval``, the
``metrics.csv`` that ``configs/evaluate.yaml`` wrote for that model (``--output_dir <run>/eval``).
The parallel degree is read from the weights' shapes; parameters and GFLOPs are measured on the
network built with it (GFLOPs counted as the paper does, without the Mamba blocks' own work);
DSC and mIoU are the pooled test metrics. Prints a Markdown table with the paper's figures beside.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

# run as a script, Python looks in commands/ only: the bundle root holds a standalone bundle's
# vendored `networks` (in the repository, the installed project is found instead)
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from networks import UltraLightVMUNet, load_reference_weights
from networks.profile import PAPER_ABLATION, profile
from networks.weights import pvm_groups_of


def read_metrics(path: Path) -> dict[str, float]:
    """``metrics.csv`` as ``MetricsSaver`` writes it: one ``name,value`` row per metric."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; evaluate the run with --output_dir {path.parent}")
    with open(path, newline="") as f:
        return {name: float(value) for name, value in csv.reader(f)}


def run_row(run: Path, spatial_size: int) -> dict[str, float]:
    """Parameters, paper-style GMAC, DSC and mIoU of one training run."""
    state = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    groups = pvm_groups_of(state)
    net = UltraLightVMUNet(out_channels=state["final.weight"].shape[0], pvm_groups=groups)
    load_reference_weights(net, state)  # the weights fit the network the figures are measured on
    stats = profile(net, (1, 3, spatial_size, spatial_size))
    metrics = read_metrics(run / "eval" / "metrics.csv")
    return {"pvm_groups": groups, **stats, "dsc": metrics["dsc"], "miou": metrics["miou"]}


def format_table(rows: Sequence[dict[str, float]], spatial_size: int) -> str:
    lines = [
        f"| pvm_groups | parameters | GFLOPs (paper-style, 3x{spatial_size}x{spatial_size}) | DSC | mIoU "
        "| paper: parameters | paper: GFLOPs | paper: DSC (ISIC2017) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in sorted(rows, key=lambda r: r["pvm_groups"]):
        paper = PAPER_ABLATION.get(int(row["pvm_groups"]))
        paper_cells = f"{paper[0]:.3f}M | {paper[1]:.3f} | {paper[2]:.4f}" if paper else "- | - | -"
        lines.append(
            f"| {row['pvm_groups']} | {row['parameters']:,} | {row['paper_gmac']:.3f} | {row['dsc']:.4f} "
            f"| {row['miou']:.4f} | {paper_cells} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python commands/ablation_table.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training output_dirs with model.pt and eval/metrics.csv")
    parser.add_argument("--spatial_size", type=int, default=256, help="image size the GFLOPs are counted at")
    args = parser.parse_args(argv)
    print(format_table([run_row(run, args.spatial_size) for run in args.runs], args.spatial_size))


if __name__ == "__main__":
    main()
