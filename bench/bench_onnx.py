"""The bundle's ONNX model against eager PyTorch: export time, file size, agreement and speed.

    python bench/bench_onnx.py [--model bundle/models/model.onnx] [--export] [--threads 2 --repeats 21]

All three run the shipped weights (``bundle/models/model.pt``) on the same random images at
the model's size, with ``--threads`` threads each: eager PyTorch as one plain pass, the bundle's
own CPU path (channels-last weights and one lane per thread: ``scripts.inferers.place`` and
``PlainTensorInferer``, as ``configs/inference.yaml`` runs it), and onnxruntime. Timings are
milliseconds per image, medians over ``--repeats`` rounds that run the three in turn (the
order alternating, so a change in machine load hits all alike) after one warm-up, with the
fastest and slowest round in brackets. The ratios are onnxruntime's time over the other's,
taken round by round (median, and the middle half of the rounds in brackets): on a machine
whose speed drifts, that pairing is what makes runs comparable. ``--cpu-time`` counts the
process's CPU seconds instead of wall seconds: with ``--threads 1`` on a machine shared with
other jobs, that is the time the work itself took. ``--export`` first rebuilds the model into
a temporary file with ``bundle/commands/export_onnx.py`` and times that.
"""

import argparse
import copy
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime
import torch

from networks import UltraLightVMUNet, load_reference_weights

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
sys.path.insert(0, str(BUNDLE))  # the bundle's helpers, as `scripts`
from scripts.inferers import PlainTensorInferer, place  # noqa: E402


def seconds(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def spread(values: list[float], scale: float) -> str:
    return f"{statistics.median(values) * scale:.1f} [{min(values) * scale:.1f}-{max(values) * scale:.1f}]"


def ratio(numerators: list[float], denominators: list[float]) -> str:
    """Round-by-round ratios: their median, and the middle half of them."""
    ratios = sorted(n / d for n, d in zip(numerators, denominators))
    quarter = len(ratios) // 4
    return f"{statistics.median(ratios):.2f} [{ratios[quarter]:.2f}-{ratios[-1 - quarter]:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLE / "models" / "model.onnx")
    parser.add_argument("--export", action="store_true", help="rebuild the model first and time the export")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--cpu-time", action="store_true", help="time with the process's CPU seconds (for --threads 1 on a shared machine)"
    )
    args = parser.parse_args()

    model_path = args.model
    if args.export:
        model_path = Path(tempfile.mkdtemp()) / "model.onnx"
        export = [sys.executable, "commands/export_onnx.py", "--output", str(model_path)]
        took = seconds(lambda: subprocess.run(export, cwd=BUNDLE, check=True, capture_output=True))
        print(f"export (commands/export_onnx.py, with its check against PyTorch): {took:.1f} s")
    model = onnx.load(str(model_path))
    print(f"{model_path}: {model_path.stat().st_size / 1024:.0f} KB, {len(model.graph.node)} nodes")

    torch.set_num_threads(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    (inputs,) = session.get_inputs()
    net = load_reference_weights(UltraLightVMUNet(), BUNDLE / "models" / "model.pt").eval()
    placed, lanes = place(copy.deepcopy(net), "cpu"), PlainTensorInferer(cpu_lanes=0)
    size = inputs.shape[2:]

    clock = time.process_time if args.cpu_time else time.perf_counter
    kind = "CPU ms" if args.cpu_time else "ms"
    print(f"\n{kind} per image at {size[0]}x{size[1]}, {args.threads} threads, median [min-max] of {args.repeats} rounds;")
    print("onnxruntime's time over the others', round by round: median [middle half of the rounds]\n")
    print(
        "| batch | eager PyTorch, one pass | bundle's CPU path | onnxruntime | onnxruntime / eager | onnxruntime / bundle's | largest diff from eager: onnxruntime, bundle's |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for batch in args.batches:
        images = torch.rand(batch, inputs.shape[1], *size, generator=torch.Generator().manual_seed(batch)) * 255
        feed = {inputs.name: images.numpy()}
        with torch.no_grad():
            runs = {
                "eager": functools.partial(net, images),
                "bundle": functools.partial(lanes, images, placed),
                "onnx": functools.partial(session.run, None, feed),
            }
            expected = runs["eager"]().numpy()
            differences = [float(np.abs(out - expected).max()) for out in (runs["onnx"]()[0], runs["bundle"]().numpy())]
            times: dict[str, list[float]] = {name: [] for name in runs}
            for round_ in range(args.repeats):
                for name in list(runs)[:: 1 if round_ % 2 else -1]:
                    times[name].append(seconds(runs[name], clock))
        scale = 1000 / batch
        cells = [spread(times[name], scale) for name in runs] + [
            ratio(times["onnx"], times[name]) for name in ("eager", "bundle")
        ]
        print(f"| {batch} | " + " | ".join(cells) + f" | {differences[0]:.1e}, {differences[1]:.1e} |")


if __name__ == "__main__":
    main()
