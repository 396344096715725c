"""CPU speed and memory of UltraLight VM-UNet against two baselines built from the same weights.

    python bench/bench_speed.py [--batch 8 --size 256 --threads 2]

Rows: ``chunked`` (the pure-PyTorch scan the network uses), ``sequential`` (baseline a: the
same network with a plain token-by-token loop scan) and ``identity`` (baseline b: the scan
replaced by ``y = u``, the floor no scan can beat). Each row runs in its own process so that
its peak resident memory is its own. A training step is forward, BCE+Dice loss, backward and
AdamW. Times are medians of ``--repeats`` runs after one warm-up.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict
from unittest import mock

import torch
from monai.losses import DiceCELoss

import networks.mamba
from networks import UltraLightVMUNet

VARIANTS = ("chunked", "sequential", "identity")


def _median_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: allocator, one-time dispatch
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(variant: str, batch: int, size: int, repeats: int) -> Dict[str, float]:
    """Times inference and one training step of ``variant``; runs in the calling process."""
    torch.manual_seed(0)
    net = UltraLightVMUNet(scan_backend="sequential" if variant == "sequential" else "torch")
    images = torch.rand(batch, 3, size, size) * 255
    labels = (torch.rand(batch, 1, size, size) > 0.5).float()
    loss_fn = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)

    def infer() -> None:
        with torch.no_grad():
            net.eval()(images)

    def train_step() -> None:
        net.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(images), labels).backward()
        optimizer.step()

    identity = mock.patch.object(networks.mamba, "selective_scan_chunked", lambda u, delta, A, B, C, D: u)
    with identity if variant == "identity" else mock.patch.object(networks.mamba, "logger", networks.mamba.logger):
        infer_s = _median_seconds(infer, repeats)
        train_s = _median_seconds(train_step, max(1, repeats // 2))
    return {
        "infer_s": infer_s,
        "train_s": train_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--variant", choices=VARIANTS, help="measure one variant and print JSON (used internally)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.variant:
        print(json.dumps(measure(args.variant, args.batch, args.size, args.repeats)))
        return

    rows = {}
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--variant", variant] + [
            f"--{k}={getattr(args, k)}" for k in ("batch", "size", "threads", "repeats")
        ]
        rows[variant] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    print(f"UltraLight VM-UNet, float32, batch {args.batch}, 3x{args.size}x{args.size}, {args.threads} threads, torch {torch.__version__}")
    print(f"{'scan':<12}{'infer s':>9}{'img/s':>8}{'train s':>9}{'img/s':>8}{'peak RSS MB':>13}")
    for variant, r in rows.items():
        print(
            f"{variant:<12}{r['infer_s']:>9.3f}{args.batch / r['infer_s']:>8.1f}"
            f"{r['train_s']:>9.3f}{args.batch / r['train_s']:>8.1f}{r['peak_rss_mb']:>13.0f}"
        )
    ours, seq, floor = rows["chunked"], rows["sequential"], rows["identity"]
    print(
        f"chunked vs sequential: inference {seq['infer_s'] / ours['infer_s']:.2f}x faster, "
        f"training step {seq['train_s'] / ours['train_s']:.2f}x faster"
    )
    print(
        f"chunked vs identity floor: inference {ours['infer_s'] / floor['infer_s']:.2f}x, "
        f"training step {ours['train_s'] / floor['train_s']:.2f}x the floor's time"
    )


if __name__ == "__main__":
    main()
