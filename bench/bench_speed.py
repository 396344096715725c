"""CPU speed and memory of UltraLight VM-UNet against two baselines built from the same weights.

    python bench/bench_speed.py [--batch 8 --size 256 --repeats 5]

Rows: ``chunked`` (the pure-PyTorch scan the network uses), ``sequential`` (baseline a: the
same network with a plain token-by-token loop scan) and ``identity`` (baseline b: the scan
replaced by ``y = u``, the floor no scan can beat), and ``chunked-gN``: the chunked scan at
other PVM parallel degrees (``pvm_groups=N``; the others run the published 4): fewer groups
make a wider Mamba over fewer sequences. A training step is forward, BCE+Dice
loss, backward and AdamW. Timings are medians over ``--repeats`` rounds that visit the
variants in turn (so a change in machine load hits all of them alike), after one warm-up.
Peak resident memory is measured per variant in a child process of its own. Run it on an
otherwise idle machine: other processes competing for the cores distort every number.
"""

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Iterator
from unittest import mock

import torch
from monai.losses import DiceCELoss

import networks.scan
from networks import UltraLightVMUNet

VARIANTS = ("chunked", "sequential", "identity", "chunked-g1", "chunked-g2", "chunked-g8")
PVM_GROUPS = {"chunked-g1": 1, "chunked-g2": 2, "chunked-g8": 8}  # 4 for the others


@contextlib.contextmanager
def scan_of(variant: str) -> Iterator[None]:
    """Replaces the scan by identity while the ``identity`` variant runs."""
    if variant != "identity":
        yield
        return
    with mock.patch.object(networks.scan, "selective_scan_chunked", lambda u, delta, A, B, C, D: u):
        yield


def build(variant: str, batch: int, size: int) -> Dict[str, Callable[[], None]]:
    """One inference call and one training step of ``variant``, all variants from one seed."""
    torch.manual_seed(0)
    net = UltraLightVMUNet(
        scan_backend="sequential" if variant == "sequential" else "torch", pvm_groups=PVM_GROUPS.get(variant, 4)
    )
    images = torch.rand(batch, 3, size, size) * 255
    labels = (torch.rand(batch, 1, size, size) > 0.5).float()
    loss_fn = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)

    def infer() -> None:
        with scan_of(variant), torch.no_grad():
            net.eval()(images)

    def train_step() -> None:
        with scan_of(variant):
            net.train()
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(images), labels).backward()
            optimizer.step()

    return {"infer": infer, "train": train_step}


def seconds(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mb(variant: str, batch: int, size: int) -> float:
    """Peak resident memory of a process that runs one inference and one training step."""
    command = [sys.executable, __file__, "--rss-of", variant, f"--batch={batch}", f"--size={size}"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rss-of", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rss_of:
        calls = build(args.rss_of, args.batch, args.size)
        calls["infer"]()
        calls["train"]()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return

    # Before the models exist here: a child's ru_maxrss starts at its parent's size at fork.
    peak_mb = {variant: peak_rss_mb(variant, args.batch, args.size) for variant in VARIANTS}
    calls = {variant: build(variant, args.batch, args.size) for variant in VARIANTS}
    times: Dict[str, Dict[str, list]] = {v: {"infer": [], "train": []} for v in VARIANTS}
    for round_ in range(args.repeats + 1):
        for kind in ("infer", "train"):
            for variant in VARIANTS:
                elapsed = seconds(calls[variant][kind])
                if round_ > 0:  # round 0 warms up
                    times[variant][kind].append(elapsed)
    median = {v: {k: statistics.median(t) for k, t in kinds.items()} for v, kinds in times.items()}

    print(
        f"UltraLight VM-UNet, float32, batch {args.batch}, 3x{args.size}x{args.size}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of {args.repeats}"
    )
    print(f"{'scan':<12}{'infer s':>9}{'img/s':>8}{'train step s':>14}{'img/s':>8}{'peak RSS MB':>13}")
    for variant in VARIANTS:
        m = median[variant]
        print(
            f"{variant:<12}{m['infer']:>9.3f}{args.batch / m['infer']:>8.1f}{m['train']:>14.3f}"
            f"{args.batch / m['train']:>8.1f}{peak_mb[variant]:>13.0f}"
        )
    ours, seq, floor = median["chunked"], median["sequential"], median["identity"]
    print(
        f"chunked is {seq['infer'] / ours['infer']:.2f}x faster than sequential at inference, "
        f"{seq['train'] / ours['train']:.2f}x per training step"
    )
    print(
        f"chunked takes {ours['infer'] / floor['infer']:.2f}x the identity floor's time at inference, "
        f"{ours['train'] / floor['train']:.2f}x per training step"
    )


if __name__ == "__main__":
    main()
