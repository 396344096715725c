"""GPU speed and memory of UltraLight VM-UNet for each selective-scan backend.

    python bench/bench_gpu.py [--batches 8 32 --size 256 --repeats 30]

Rows: ``triton`` (the Triton kernels), ``torch`` (the pure-PyTorch chunked scan on CUDA),
``cuda`` (the reference release's mamba-ssm kernels, where they import) and ``identity`` (the
scan replaced by ``y = u``: the floor no scan can beat), all with the same weights, at each batch
size, in float32 and under bfloat16 autocast. A training step is forward, BCE+Dice loss, backward
and AdamW. Times are medians of CUDA-event timings over rounds that visit the variants in turn,
after warm-up (Triton compiles its kernels then); the spread is the interquartile range. Peak
memory is ``torch.cuda.max_memory_allocated`` over one training step.

``--compile_batches 8`` adds, in float32 at those batch sizes, the network and the floor under
``torch.compile`` (``+compile``), and under ``torch.compile(mode="reduce-overhead")``, which
replays CUDA graphs (``+cudagraphs``); compile time is printed, not counted.
"""

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Callable

import torch
from monai.losses import DiceCELoss

import networks.scan
from networks import UltraLightVMUNet


@contextlib.contextmanager
def identity_scan(enabled: bool) -> Iterator[None]:
    """Replaces every scan by ``y = u`` while ``enabled``."""
    original = networks.scan.selective_scan
    if enabled:
        networks.scan.selective_scan = lambda u, delta, A, B, C, D, backend="auto": u
    try:
        yield
    finally:
        networks.scan.selective_scan = original


def available_variants() -> list[str]:
    variants = ["triton", "torch", "identity"]
    if networks.scan.cuda_kernels_available():
        variants.insert(2, "cuda")
    return variants


def build(variant: str, batch: int, size: int, bf16: bool) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    scan, _, compiled = variant.partition("+")
    eager = UltraLightVMUNet(scan_backend="torch" if scan == "identity" else scan).cuda()
    net = eager
    if compiled:
        net = torch.compile(eager, mode="reduce-overhead" if compiled == "cudagraphs" else None, fullgraph=True)
    variant = scan
    images = torch.rand(batch, 3, size, size, device="cuda") * 255
    labels = (torch.rand(batch, 1, size, size, device="cuda") > 0.5).float()
    loss_fn = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    optimizer = torch.optim.AdamW(eager.parameters(), lr=1e-3, weight_decay=1e-2)
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)  # noqa: E731

    def infer() -> None:
        with identity_scan(variant == "identity"), torch.no_grad(), autocast():
            net.eval()(images)

    def train_step() -> None:
        with identity_scan(variant == "identity"):
            net.train()
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(net(images), labels)
            loss.backward()
            optimizer.step()

    return {"inference": infer, "training step": train_step}


def time_ms(fn: Callable[[], None]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def peak_mb(fn: Callable[[], None]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def quartiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{q[1]:.2f} ({q[0]:.2f}-{q[2]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--compile_batches", type=int, nargs="*", default=[])
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    base_variants = available_variants()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, 3x{args.size}x{args.size}")
    print("| batch | precision | scan | inference ms (IQR) | img/s | training step ms (IQR) | img/s | peak MB (train) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for batch in args.batches:
        for bf16 in (False, True):
            variants = list(base_variants)
            if batch in args.compile_batches and not bf16:
                variants[-1:-1] = ["triton+compile", "triton+cudagraphs"]
                variants += ["identity+compile", "identity+cudagraphs"]
            runs = {v: build(v, batch, args.size, bf16) for v in variants}
            for v in variants:  # warm-up: Triton and torch.compile compile, cuDNN picks algorithms
                start = time.perf_counter()
                for fn in runs[v].values():
                    for _ in range(3):
                        fn()
                torch.cuda.synchronize()
                if "+" in v:
                    print(f"{v}: compiled and warmed up in {time.perf_counter() - start:.0f} s")
            peaks = {v: peak_mb(runs[v]["training step"]) for v in variants}
            times: dict[str, dict[str, list[float]]] = {v: {k: [] for k in runs[v]} for v in variants}
            for _ in range(args.repeats):
                for v in variants:
                    for kind, fn in runs[v].items():
                        times[v][kind].append(time_ms(fn))
            for v in variants:
                inf, step = (statistics.median(times[v][k]) for k in ("inference", "training step"))
                print(
                    f"| {batch} | {'bf16 autocast' if bf16 else 'fp32'} | {v} | {quartiles(times[v]['inference'])} | "
                    f"{batch / inf * 1e3:.0f} | {quartiles(times[v]['training step'])} | {batch / step * 1e3:.0f} | "
                    f"{peaks[v]:.0f} |"
                )
            floor = {k: statistics.median(times["identity"][k]) for k in ("inference", "training step")}
            for v in (v for v in variants if v != "identity"):
                ratios = [statistics.median(times[v][k]) / floor[k] for k in ("inference", "training step")]
                print(f"|   | ratio to identity floor | {v} | {ratios[0]:.2f}x | | {ratios[1]:.2f}x | | |")


if __name__ == "__main__":
    main()
