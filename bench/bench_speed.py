"""CPU speed and memory of UltraLight VM-UNet against two baselines built from the same weights.

    python bench/bench_speed.py [--batch 8 --size 256 --repeats 5]

Rows: ``compiled`` (the compiled CPU scan, ``scan_backend="cpu"``, what ``auto`` runs on CPUs
where it builds), ``chunked`` (the pure-PyTorch scan), ``sequential`` (baseline a: the same
network with a plain token-by-token loop scan), ``identity`` (baseline b: the scan replaced
by ``y = u``, the floor no scan can beat), and ``compiled-gN``: the compiled scan at other PVM
parallel degrees (``pvm_groups=N``; the others run the published 4): fewer groups make a wider
Mamba over fewer sequences. A column times inference on a 3D volume (1x1x64x64x64; not for the
loop scan, which would take minutes), and a second table times the six scans of one forward
pass alone (their arguments recorded from the network), compiled against chunked. A training
step is forward, BCE+Dice
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
from collections.abc import Iterator
from typing import Callable
from unittest import mock

import torch
from monai.losses import DiceCELoss

import networks.scan
from networks import UltraLightVMUNet

VARIANTS = ("compiled", "chunked", "sequential", "identity", "compiled-g1", "compiled-g2", "compiled-g8")
BACKEND = {"compiled": "cpu", "sequential": "sequential", "compiled-g1": "cpu", "compiled-g2": "cpu", "compiled-g8": "cpu"}
PVM_GROUPS = {"compiled-g1": 1, "compiled-g2": 2, "compiled-g8": 8}  # 4 for the others
# --compile: the network and the floor in channels-last memory format, under torch.compile, and
# both (what the bundle's --compile true runs on a CPU)
COMPILE_VARIANTS = (
    "compiled+channels_last",
    "compiled+torch.compile",
    "compiled+torch.compile+channels_last",
    "identity+channels_last",
    "identity+torch.compile",
    "identity+torch.compile+channels_last",
)


@contextlib.contextmanager
def scan_of(variant: str) -> Iterator[None]:
    """Replaces the scan by identity while the ``identity`` variant runs."""
    if variant != "identity":
        yield
        return
    with mock.patch.object(networks.scan, "selective_scan_chunked", lambda u, delta, A, B, C, D: u):
        yield


def build(variant: str, batch: int, size: int) -> dict[str, Callable[[], None]]:
    """One inference call and one training step of ``variant``, all variants from one seed."""
    torch.manual_seed(0)
    variant, *modes = variant.split("+")
    eager = UltraLightVMUNet(scan_backend=BACKEND.get(variant, "torch"), pvm_groups=PVM_GROUPS.get(variant, 4))
    images = torch.rand(batch, 3, size, size) * 255
    net = eager
    if "channels_last" in modes:
        net, images = eager.to(memory_format=torch.channels_last), images.to(memory_format=torch.channels_last)
    if "torch.compile" in modes:
        net = torch.compile(net, fullgraph=True)
    labels = (torch.rand(batch, 1, size, size) > 0.5).float()
    loss_fn = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    optimizer = torch.optim.AdamW(eager.parameters(), lr=1e-3, weight_decay=1e-2)

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


def build_volume(variant: str) -> Callable[[], None]:
    """Inference on one 1x1x64x64x64 volume (3D network, default widths)."""
    torch.manual_seed(0)
    net = UltraLightVMUNet(spatial_dims=3, in_channels=1, scan_backend=BACKEND.get(variant, "torch")).eval()
    volume = torch.rand(1, 1, 64, 64, 64)

    def infer() -> None:
        with scan_of(variant), torch.no_grad():
            net(volume)

    return infer


def build_scans(batch: int, size: int) -> dict[str, dict[str, Callable[[], None]]]:
    """The six scans of one forward pass alone, on the arguments the network gives them: without
    gradients, and forward plus backward."""
    recorded = []
    real_scan = networks.scan.selective_scan

    def record(*args: torch.Tensor, backend: str = "auto") -> torch.Tensor:
        recorded.append([a.detach() for a in args])
        return real_scan(*args, backend=backend)

    torch.manual_seed(0)
    with mock.patch.object(networks.scan, "selective_scan", record), torch.no_grad():
        UltraLightVMUNet(scan_backend="torch")(torch.rand(batch, 3, size, size) * 255)
    grads = [torch.randn_like(args[0]) for args in recorded]

    def calls(backend: str) -> dict[str, Callable[[], None]]:
        def infer() -> None:
            with torch.no_grad():
                for args in recorded:
                    networks.scan.selective_scan(*args, backend=backend)

        def train() -> None:
            for args, grad in zip(recorded, grads):
                args = [a.requires_grad_() for a in args]
                networks.scan.selective_scan(*args, backend=backend).backward(grad)
                for a in args:
                    a.grad = None
                    a.requires_grad_(False)

        return {"scans infer": infer, "scans train": train}

    return {"compiled": calls("cpu"), "chunked": calls("torch")}


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
    parser.add_argument(
        "--compile", action="store_true", help="add channels-last and torch.compile rows (compiling takes minutes)"
    )
    parser.add_argument("--variants", help="comma-separated rows to run (default: all); e.g. compiled,identity with --compile")
    parser.add_argument("--rss-of", choices=VARIANTS + COMPILE_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    variants = VARIANTS + COMPILE_VARIANTS if args.compile else VARIANTS
    if args.variants:
        chosen = args.variants.split(",")
        unknown = sorted(set(chosen) - set(variants))
        if unknown:
            parser.error(f"--variants: unknown {unknown}; choose from {', '.join(variants)}")
        variants = tuple(v for v in variants if v in chosen or (v.partition("+")[0] in chosen and "+" in v))

    if args.rss_of:
        calls = build(args.rss_of, args.batch, args.size)
        calls["infer"]()
        calls["train"]()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return

    # Before the models exist here: a child's ru_maxrss starts at its parent's size at fork.
    peak_mb = {variant: peak_rss_mb(variant, args.batch, args.size) for variant in variants}
    calls = {variant: build(variant, args.batch, args.size) for variant in variants}
    for variant in {"compiled", "chunked", "identity"}.intersection(variants):  # the loop scan would take minutes here
        calls[variant]["infer 3D"] = build_volume(variant)
    scans = {v: c for v, c in build_scans(args.batch, args.size).items() if v in variants}
    for variant, scan_calls in scans.items():
        calls[variant].update(scan_calls)
    kinds = ("infer", "train", "infer 3D", "scans infer", "scans train")
    times: dict[str, dict[str, list]] = {v: {k: [] for k in calls[v]} for v in variants}
    for round_ in range(args.repeats + 1):
        for kind in kinds:
            for variant in variants:
                if kind in calls[variant]:
                    elapsed = seconds(calls[variant][kind])
                    if round_ > 0:  # round 0 warms up
                        times[variant][kind].append(elapsed)
    median = {v: {k: statistics.median(t) for k, t in kinds_.items()} for v, kinds_ in times.items()}
    spread = {v: {k: (min(t), max(t)) for k, t in kinds_.items()} for v, kinds_ in times.items()}

    print(
        f"UltraLight VM-UNet, float32, batch {args.batch}, 3x{args.size}x{args.size}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of {args.repeats}"
    )
    print(f"{'scan':<24}{'infer s':>9}{'img/s':>8}{'train step s':>14}{'img/s':>8}{'peak RSS MB':>13}{'3D infer s':>12}")
    for variant in variants:
        m = median[variant]
        print(
            f"{variant:<24}{m['infer']:>9.3f}{args.batch / m['infer']:>8.1f}{m['train']:>14.3f}"
            f"{args.batch / m['train']:>8.1f}{peak_mb[variant]:>13.0f}{m.get('infer 3D', float('nan')):>12.3f}"
        )
    floor = median.get("identity")
    for variant in {"compiled", "chunked"}.intersection(variants):
        ours = median[variant]
        if "sequential" in median:
            seq = median["sequential"]
            print(
                f"{variant} is {seq['infer'] / ours['infer']:.2f}x faster than sequential at inference, "
                f"{seq['train'] / ours['train']:.2f}x per training step"
            )
        if floor:
            print(
                f"{variant} takes {ours['infer'] / floor['infer']:.2f}x the identity floor's time at inference, "
                f"{ours['train'] / floor['train']:.2f}x per training step, {ours['infer 3D'] / floor['infer 3D']:.2f}x on the 3D volume"
            )
    if floor:
        for variant in [v for v in COMPILE_VARIANTS if v in variants and v != "identity+channels_last"]:
            m = median[variant]
            print(
                f"{variant} takes {m['infer'] / floor['infer']:.2f}x the eager identity floor's time at inference, "
                f"{m['train'] / floor['train']:.2f}x per training step"
            )
    if scans:
        print(f"\nthe six scans of one forward pass alone, seconds (median, min-max of {args.repeats})")
        print(f"{'scan':<24}{'inference':>26}{'forward+backward':>26}")
    for variant in scans:
        cells = [
            f"{median[variant][k]:.4f} ({spread[variant][k][0]:.4f}-{spread[variant][k][1]:.4f})"
            for k in ("scans infer", "scans train")
        ]
        print(f"{variant:<12}{cells[0]:>26}{cells[1]:>26}")
    if len(scans) == 2:
        fast, slow = median["compiled"], median["chunked"]
        print(
            f"compiled scans are {slow['scans infer'] / fast['scans infer']:.1f}x faster than chunked at inference, "
            f"{slow['scans train'] / fast['scans train']:.1f}x forward+backward"
        )


if __name__ == "__main__":
    main()
