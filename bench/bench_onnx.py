"""The bundle's ONNX model against eager PyTorch: export time, file size, agreement and speed.

    python bench/bench_onnx.py [--model bundle/models/model.onnx] [--export] [--threads 2 --repeats 7]

Both run the shipped weights (``bundle/models/model.pt``) on the same random images at the
model's size, with ``--threads`` threads each. Timings are milliseconds per image, medians
over ``--repeats`` rounds that alternate the two runtimes (so a change in machine load hits
both alike) after one warm-up, with the fastest and slowest round in brackets. ``--cpu-time``
counts the process's CPU seconds instead of wall seconds: with ``--threads 1`` on a machine
shared with other jobs, that is the time the work itself took. ``--export``
first rebuilds the model into a temporary file with ``bundle/scripts/export_onnx.py`` and
times that. Run it on an otherwise idle machine.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

import numpy as np
import onnx
import onnxruntime
import torch

from networks import UltraLightVMUNet, load_reference_weights

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"


def seconds(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def spread(values: List[float], scale: float) -> str:
    return f"{statistics.median(values) * scale:8.1f} [{min(values) * scale:.1f}-{max(values) * scale:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLE / "models" / "model.onnx")
    parser.add_argument("--export", action="store_true", help="rebuild the model first and time the export")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--cpu-time", action="store_true", help="time with the process's CPU seconds (for --threads 1 on a shared machine)")
    args = parser.parse_args()

    model_path = args.model
    if args.export:
        model_path = Path(tempfile.mkdtemp()) / "model.onnx"
        export = [sys.executable, "scripts/export_onnx.py", "--output", str(model_path)]
        took = seconds(lambda: subprocess.run(export, cwd=BUNDLE, check=True, capture_output=True))
        print(f"export (scripts/export_onnx.py, with its check against PyTorch): {took:.1f} s")
    model = onnx.load(str(model_path))
    print(f"{model_path}: {model_path.stat().st_size / 1024:.0f} KB, {len(model.graph.node)} nodes")

    torch.set_num_threads(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    (inputs,) = session.get_inputs()
    net = load_reference_weights(UltraLightVMUNet(), BUNDLE / "models" / "model.pt").eval()
    size = inputs.shape[2:]

    clock = time.process_time if args.cpu_time else time.perf_counter
    kind = "CPU ms" if args.cpu_time else "ms"
    print(f"\n{kind} per image at {size[0]}x{size[1]}, {args.threads} threads, median [min-max] of {args.repeats} rounds")
    print(f"{'batch':>5} | {'eager PyTorch':>24} | {'onnxruntime':>24} | largest |diff|")
    for batch in args.batches:
        images = torch.rand(batch, inputs.shape[1], *size, generator=torch.Generator().manual_seed(batch)) * 255
        feed = {inputs.name: images.numpy()}
        with torch.no_grad():
            eager = lambda: net(images)  # noqa: E731
            runtime = lambda: session.run(None, feed)  # noqa: E731
            difference = float(np.abs(runtime()[0] - eager().numpy()).max())  # also the warm-up
            times = {"eager": [], "onnx": []}
            for _ in range(args.repeats):
                times["eager"].append(seconds(eager, clock))
                times["onnx"].append(seconds(runtime, clock))
        scale = 1000 / batch
        print(f"{batch:>5} | {spread(times['eager'], scale):>24} | {spread(times['onnx'], scale):>24} | {difference:.1e}")


if __name__ == "__main__":
    main()
