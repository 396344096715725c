"""The bundle's pipeline against the bare network: training epochs, the on-disk case cache,
batched inference, a large photo, and the README's demo.

    python bench/bench_pipeline.py [--sections training,cache,inference,large,demo]

Run from the repository root; every run happens in temporary folders. Sections:

- ``training``: where a training iteration's time goes (waiting for data, the step, the
  handlers; Ignite's ``BasicTimeProfiler``), the cost of each augmentation, and the epoch's
  wall time against iterations x the bare training step (forward, loss, backward, AdamW of
  the bundle's own network, loss and optimiser on one fixed batch), for ``num_workers`` 2
  and 0. The bare step is timed before and after the epochs; the median of both counts.
- ``preprocess``: the deterministic preprocessing of ``--large-count`` generated 4000x3000
  JPEGs with PNG masks through train.yaml's cached dataset, in this process: the first pass
  decodes and writes ``cache_dir``, the second reads it.
- ``cache``: two starts of ``python -m monai.bundle run training`` (1 epoch) over
  ``--large-count`` generated 4000x3000 JPEGs with PNG masks: the first decodes and fills
  ``cache_dir``, the second reads it.
- ``inference``: per-image cost of ``configs/inference.yaml`` (``batch_size`` 8) over the
  generated 256x256 demo images, and with ``--cpu_lanes 1``, against the bare network's
  per-image time at batch 8: one plain pass, in channels-last order, and in channels-last
  order in lanes as the bundle runs it (rounds alternate the five).
- ``large``: one 8000x6000 JPEG through ``configs/inference.yaml`` in a fresh process:
  the run's time (model loaded) and the peak resident memory of the largest process.
- ``compile``: ``--compile true`` against eager for inference over the ``--demo-images``
  256x256 images and for a 1-epoch training run on them: the first start compiles into an
  empty inductor cache (``TORCHINDUCTOR_CACHE_DIR`` in the temporary folder), the second
  reuses it. Takes many minutes on a small CPU.
- ``demo``: the README's demo commands, each timed as a user runs it.

Timings move with the machine's load: say what else ran when you quote them. On a machine
shared with other jobs, set ``OMP_NUM_THREADS=1`` (inherited by every command run here): with
more threads than free cores, OpenMP threads wait for each other at every parallel region
and a training step can take ten times longer.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundle"
SECTIONS = ("training", "preprocess", "cache", "inference", "large", "compile", "demo")


def bundle_parser(config: str, **overrides):
    """The parsed bundle config ``configs/<config>`` with ``overrides``, run from the bundle root."""
    from monai.bundle import ConfigParser

    os.chdir(BUNDLE)
    if str(BUNDLE) not in sys.path:
        sys.path.insert(0, str(BUNDLE))
    parser = ConfigParser()
    parser.read_config(f"configs/{config}")
    for key, value in overrides.items():
        parser[key] = value
    return parser


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bundle_command(run_id: str | None, config: str, **settings: object) -> list[str]:
    """`python -m monai.bundle run [run_id] --config_file configs/<config>.yaml --key value ...`, as typed."""
    options = [part for key, value in settings.items() for part in (f"--{key}", str(value))]
    run = ["run", run_id] if run_id else ["run"]
    return [sys.executable, "-m", "monai.bundle", *run, "--config_file", f"configs/{config}.yaml", *options]


def read_all(dataset: torch.utils.data.Dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


# ---- data -------------------------------------------------------------------------------


def make_demo(folder: Path, count: int, size: int = 256) -> Path:
    subprocess.run(
        [sys.executable, "-m", "prepare", "synthetic", "--out", str(folder), "--num-images", str(count), "--size", str(size)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return folder


def make_large(folder: Path, count: int, width: int, height: int, with_masks: bool) -> list[Path]:
    """``count`` JPEG photos of width x height (synthetic cases scaled up) and their PNG masks."""
    from prepare.synthetic import render_case

    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    paths = []
    for index in range(count):
        image, mask = render_case(128, np.random.default_rng([7, index]))
        path = folder / "images" / f"photo_{index:04d}.jpg"
        Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR).save(path, quality=90)
        if with_masks:
            Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST).save(
                folder / "masks" / f"photo_{index:04d}.png"
            )
        paths.append(path)
    return paths


# ---- training ---------------------------------------------------------------------------


def bare_step_seconds(parser, repeats: int) -> list[float]:
    """Times of the bundle's training step on one fixed batch of the configured size."""
    network, loss, optimizer = (parser.get_parsed_content(k) for k in ("network", "loss", "optimizer"))
    batch, size = parser["batch_size"], parser["spatial_size"]
    images = torch.rand(batch, 3, size, size) * 255
    labels = (torch.rand(batch, 1, size, size) > 0.5).float()

    def step() -> None:
        network.train()
        optimizer.zero_grad(set_to_none=True)
        loss(network(images), labels).backward()
        optimizer.step()

    step()  # warm-up
    return [seconds(step) for _ in range(repeats)]


def augmentation_costs(parser, cases: int = 24) -> dict[str, float]:
    """Milliseconds per case of each augmentation transform, on preprocessed cases, one thread,
    without metadata (as train.yaml runs them)."""
    from monai.data import set_track_meta
    from monai.transforms import Compose

    set_track_meta(False)

    load = Compose(parser.get_parsed_content("load_transforms"))
    items = [load(dict(item)) for item in parser.get_parsed_content("train#datalist")[:cases]]
    costs = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    for index, transform in enumerate(parser.get_parsed_content("augmentation")):
        name = f"{index}: {type(transform).__name__}"
        costs[name] = 1e3 * statistics.mean(seconds(functools.partial(transform, dict(item))) for item in items * 4)
    torch.set_num_threads(threads)
    return costs


def run_epochs(demo: Path, out: Path, epochs: int, num_workers: int) -> dict:
    """Trains ``epochs`` epochs (checkpoints written, no validation); per-epoch wall times and a
    profile of the iterations."""
    from ignite.engine import Events
    from ignite.handlers import BasicTimeProfiler

    parser = bundle_parser(
        "train.yaml",
        dataset_dir=str(demo),
        output_dir=str(out),
        num_epochs=epochs,
        val_interval=epochs + 1,
        num_workers=num_workers,
    )
    trainer = parser.get_parsed_content("train#trainer")
    profiler = BasicTimeProfiler()
    profiler.attach(trainer)
    starts, walls = {}, []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: starts.__setitem__(e.state.epoch, time.perf_counter()))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: walls.append(time.perf_counter() - starts[e.state.epoch]))
    parser.get_parsed_content("training")  # the config's own steps: determinism, no metadata, savers, run
    results = profiler.get_results()
    iterations = trainer.state.epoch_length
    handlers = results["event_handlers_stats"]
    return {
        "epoch_walls": walls,
        "iterations": iterations,
        "data_wait": float(results["dataflow_stats"]["mean"]),
        "step": float(results["processing_stats"]["mean"]),
        "iteration_handlers": float(handlers["ITERATION_STARTED"]["mean"]) + float(handlers["ITERATION_COMPLETED"]["mean"]),
        "parser": parser,
    }


def section_training(demo: Path, work: Path, epochs: int, repeats: int) -> list[str]:
    parser = bundle_parser("train.yaml", dataset_dir=str(demo), output_dir=str(work / "bare"))
    bare = bare_step_seconds(parser, repeats)
    costs = augmentation_costs(parser)
    runs = {w: run_epochs(demo, work / f"train{w}", epochs, w) for w in (2, 0)}
    bare += bare_step_seconds(parser, repeats)
    step = statistics.median(bare)
    lines = [
        f"bare training step (batch {parser['batch_size']}, {parser['spatial_size']}^2): median {step:.3f} s "
        f"over {len(bare)} (range {spread(bare)})",
        "augmentation, ms per case (one thread): " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items()),
        "| num_workers | iterations | epoch s (epochs 2+, median) | iterations x bare step s | ratio "
        "| per iteration: data wait s | step s | iteration handlers s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workers, r in runs.items():
        later = r["epoch_walls"][1:] or r["epoch_walls"]
        epoch = statistics.median(later)
        ideal = r["iterations"] * step
        lines.append(
            f"| {workers} | {r['iterations']} | {epoch:.2f} (range {spread(later)}) | {ideal:.2f} | "
            f"{epoch / ideal:.2f}x | {r['data_wait']:.4f} | {r['step']:.3f} | {r['iteration_handlers']:.4f} |"
        )
    lines.append(
        "first epoch (fills the case cache, starts the workers): "
        + ", ".join(f"num_workers {w}: {r['epoch_walls'][0]:.2f} s" for w, r in runs.items())
    )
    return lines


# ---- cache ------------------------------------------------------------------------------


def timed_command(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def large_set(work: Path, count: int) -> tuple[Path, float]:
    """``count`` 4000x3000 JPEGs with masks and their datalist (10 % validation), made once."""
    data = work / "large_set"
    if (data / "datalist.json").is_file():
        return data, 0.0
    started = time.perf_counter()
    paths = make_large(data, count, 4000, 3000, with_masks=True)
    cases = [{"image": f"images/{p.name}", "label": f"masks/{p.stem}.png"} for p in paths]
    held_out = max(1, count // 10)
    (data / "datalist.json").write_text(json.dumps({"training": cases[held_out:], "validation": cases[:held_out], "test": []}))
    return data, time.perf_counter() - started


def section_preprocess(work: Path, count: int) -> list[str]:
    from monai.data import Dataset, PersistentDataset, set_track_meta
    from monai.transforms import Compose

    data, generated = large_set(work, count)
    parser = bundle_parser("train.yaml", dataset_dir=str(data), output_dir=str(work / "preprocess_run"))
    set_track_meta(False)  # as train.yaml trains
    items = parser.get_parsed_content("train#datalist") + parser.get_parsed_content("validate#datalist")
    transform = Compose(parser.get_parsed_content("load_transforms"))
    cached = PersistentDataset(
        items, transform, cache_dir=parser.get_parsed_content("cache_dir"), hash_func=parser.get_parsed_content("cache_key")
    )
    passes = {
        "no cache (decode every time)": Dataset(items, transform),
        "first (decode, write cache_dir)": cached,
        "second (read cache_dir)": cached,
    }
    lines = [
        f"{count} JPEGs of 4000x3000 with PNG masks ({generated:.0f} s to generate), train.yaml's load_transforms, one process",
        "| pass | s | ms per case |",
        "| --- | --- | --- |",
    ]
    for name, dataset in passes.items():
        wall = seconds(functools.partial(read_all, dataset))
        lines.append(f"| {name} | {wall:.1f} | {1e3 * wall / len(items):.0f} |")
    return lines


def section_cache(work: Path, count: int) -> list[str]:
    data, generated = large_set(work, count)
    held_out = max(1, count // 10)
    command = bundle_command("training", "train", dataset_dir=data, output_dir=work / "large_run", num_epochs=1)
    lines = [
        f"{count} JPEGs of 4000x3000 with PNG masks ({generated:.0f} s to generate); "
        f"`run training --num_epochs 1`, {count - held_out} training and {held_out} validation cases",
        "| start | command wall s | epoch 1 s (validation included) |",
        "| --- | --- | --- |",
    ]
    for name in ("first (fills cache_dir)", "second (reads cache_dir)"):
        if name.startswith("second"):  # a new run over the same cache: the checkpoint would make it resume
            for stale in (work / "large_run").glob("checkpoint_epoch=*.pt"):
                stale.unlink()
        wall, log = timed_command(command, BUNDLE)
        epoch = next(line for line in log.splitlines() if "epoch 1/1:" in line).split(", ")[-2]
        lines.append(f"| {name} | {wall:.1f} | {epoch} |")
    size = sum(f.stat().st_size for f in (work / "large_run" / "cache").iterdir()) / 2**20
    lines.append(f"cache_dir holds {size:.0f} MB for {count} cases")
    return lines


# ---- inference --------------------------------------------------------------------------


def section_inference(demo: Path, work: Path, rounds: int) -> list[str]:
    from monai.data import set_track_meta

    set_track_meta(True)  # the training section, run before in this process, turned it off
    images = demo / "images"
    count = len(list(images.iterdir()))
    parser = bundle_parser("inference.yaml", input_dir=str(images), output_dir=str(work / "pred"))
    batch = parser["batch_size"]
    network = parser.get_parsed_content("network_def")  # as built: not placed
    import networks
    from scripts.inferers import PlainTensorInferer, place  # the bundle's scripts: bundle_parser put them on sys.path

    networks.load_reference_weights(network, parser.get_parsed_content("ckpt_path"))
    network.eval()
    placed = place(copy.deepcopy(network), parser.get_parsed_content("device"))  # as configs/inference.yaml places it
    inputs = torch.rand(batch, 3, parser["spatial_size"], parser["spatial_size"]) * 255
    # the bare network over as many images as the pipeline, so that every timing spans seconds
    batches = range(-(-count // batch))

    def bare(inferer: PlainTensorInferer, net: torch.nn.Module) -> Callable[[], float]:
        def run() -> float:
            with torch.no_grad():
                return seconds(lambda: [inferer(inputs, net) for _ in batches]) / (len(batches) * batch)

        return run

    def pipeline(**overrides) -> Callable[[], float]:
        def run() -> float:  # a fresh evaluator each round: the config's objects are built once per parse
            run_parser = bundle_parser("inference.yaml", input_dir=str(images), output_dir=str(work / "pred"), **overrides)
            evaluator = run_parser.get_parsed_content("evaluator")
            networks.load_reference_weights(
                run_parser.get_parsed_content("network_def"), run_parser.get_parsed_content("ckpt_path")
            )
            return seconds(evaluator.run) / count

        return run

    lanes = parser.get_parsed_content("inferer")
    variants = {
        f"bare network, batch {batch}, one pass": bare(PlainTensorInferer(1), network),
        f"bare network, batch {batch}, channels-last, one pass": bare(PlainTensorInferer(1), placed),
        f"bare network, batch {batch}, channels-last, lanes (as the bundle runs it)": bare(lanes, placed),
        "configs/inference.yaml --cpu_lanes 1 (read, infer, write mask + overlay)": pipeline(cpu_lanes=1),
        "configs/inference.yaml (read, infer, write mask + overlay)": pipeline(),
    }
    for run in list(variants.values())[:3]:
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            times[name].append(run())
    median = {name: statistics.median(t) for name, t in times.items()}
    names = list(variants)
    lines = [
        f"{count} images of 256x256, batch_size {batch}, num_workers {parser['num_workers']}, "
        f"cpu_lanes {parser['cpu_lanes']}, {rounds} rounds",
        "| | s per image (median) | range |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {median[name]:.4f} | {spread(times[name])} |" for name in names]
    lines.append(
        f"ratio: {median[names[4]] / median[names[0]]:.2f}x the network's own per-image time (one pass), "
        f"{median[names[4]] / median[names[2]]:.2f}x the network run as the bundle runs it"
    )
    return lines


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss
    would start at the parent's peak (this script's, after the sections before)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def large_child(folder: Path, out: Path) -> None:
    """In a fresh process: one inference run over ``folder``; prints seconds and peak RSS."""
    parser = bundle_parser("inference.yaml", input_dir=str(folder), output_dir=str(out))
    evaluator = parser.get_parsed_content("evaluator")
    import networks

    networks.load_reference_weights(parser.get_parsed_content("network_def"), parser.get_parsed_content("ckpt_path"))
    before = peak_rss_mb()
    elapsed = seconds(evaluator.run)
    peak = peak_rss_mb()
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "rss_before": before, "peak": peak, "workers_peak": workers}))


def section_large(work: Path) -> list[str]:
    folder = work / "one_large"
    make_large(folder, 1, 8000, 6000, with_masks=False)
    out = work / "one_large_pred"
    command = [sys.executable, __file__, "--large-child", str(folder / "images"), str(out)]
    results = []
    for _ in range(2):
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    mask = Image.open(out / "photo_0000_mask.png")
    overlay = Image.open(out / "photo_0000_overlay.jpg")
    lines = [
        "one 8000x6000 JPEG, configs/inference.yaml defaults, fresh process each (2 runs)",
        "| run | s (model loaded, read to files written) | peak RSS MB, main process | before the run | largest worker |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(results, 1):
        lines.append(f"| {i} | {r['seconds']:.2f} | {r['peak']:.0f} | {r['rss_before']:.0f} | {r['workers_peak']:.0f} |")
    lines.append(
        f"mask {mask.size[0]}x{mask.size[1]} ({(out / 'photo_0000_mask.png').stat().st_size / 2**10:.0f} KB), "
        f"overlay {overlay.size[0]}x{overlay.size[1]} ({(out / 'photo_0000_overlay.jpg').stat().st_size / 2**10:.0f} KB)"
    )
    return lines


# ---- compile ----------------------------------------------------------------------------


def section_compile(demo: Path, work: Path) -> list[str]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor_cache")}
    commands = {
        "inference": [
            "--config_file",
            "configs/inference.yaml",
            "--input_dir",
            str(demo / "images"),
            "--output_dir",
            str(work / "compile_pred"),
        ],
        "training, 1 epoch": ["training", "--config_file", "configs/train.yaml", "--dataset_dir", str(demo), "--num_epochs", "1"],
    }
    count = len(list((demo / "images").iterdir()))
    lines = [
        f"{count} images of 256x256, defaults otherwise; wall s of the whole command",
        "| command | eager | compile, first start | compile, second start |",
        "| --- | --- | --- | --- |",
    ]
    for name, args in commands.items():
        walls = []
        for run, compile_ in enumerate(("false", "true", "true")):
            extra = ["--output_dir", str(work / f"compile_runs_{run}")] if name.startswith("training") else []
            command = [sys.executable, "-m", "monai.bundle", "run", *args, *extra, "--compile", compile_]
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
            walls.append(time.perf_counter() - start)
        lines.append(f"| {name} | {walls[0]:.0f} | {walls[1]:.0f} | {walls[2]:.0f} |")
    return lines


# ---- demo -------------------------------------------------------------------------------


def section_demo(work: Path) -> list[str]:
    data, runs = work / "demo_data", work / "demo_runs"
    commands = {
        "generate 200 images": [sys.executable, "-m", "prepare", "synthetic", "--out", str(data), "--num-images", "200"],
        "train 20 epochs": bundle_command("training", "train", dataset_dir=data, output_dir=runs, num_epochs=20),
        "evaluate": bundle_command(
            None, "evaluate", dataset_dir=data, ckpt_path=runs / "model.pt", output_dir=work / "demo_eval"
        ),
        "infer 200 images": bundle_command(
            None, "inference", ckpt_path=runs / "model.pt", input_dir=data / "images", output_dir=work / "demo_pred"
        ),
    }
    lines = ["| step | wall s |", "| --- | --- |"]
    total = 0.0
    for name, command in commands.items():
        wall, log = timed_command(command, REPO if name.startswith("generate") else BUNDLE)
        total += wall
        lines.append(f"| {name} | {wall:.0f} |")
        if name.startswith("train"):
            epochs = [line.split("scripts.console - INFO - ")[-1] for line in log.splitlines() if "scripts.console" in line]
            lines.append(f"| (last epoch: {epochs[-1]}) | |")
    lines.append(f"| all | {total:.0f} |")
    dsc = (work / "demo_eval" / "metrics.csv").read_text().splitlines()
    lines.append("evaluation metrics.csv: " + "; ".join(dsc[:5]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per num_workers setting")
    parser.add_argument("--repeats", type=int, default=5, help="bare training steps before and after the epochs")
    parser.add_argument("--rounds", type=int, default=3, help="inference rounds")
    parser.add_argument("--large-count", type=int, default=500, help="4000x3000 JPEGs of the preprocess and cache sections")
    parser.add_argument("--demo-images", type=int, default=200, help="256x256 cases of the training and inference sections")
    parser.add_argument("--large-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_child:
        large_child(*args.large_child)
        return
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        demo = make_demo(work / "demo", args.demo_images) if {"training", "inference", "compile"} & set(sections) else None
        runners = {
            "training": lambda: section_training(demo, work, args.epochs, args.repeats),
            "preprocess": lambda: section_preprocess(work, args.large_count),
            "cache": lambda: section_cache(work, args.large_count),
            "inference": lambda: section_inference(demo, work, args.rounds),
            "large": lambda: section_large(work),
            "compile": lambda: section_compile(demo, work),
            "demo": lambda: section_demo(work),
        }
        for name in sections:
            started = time.perf_counter()
            lines = runners[name]()
            print(f"\n## {name} ({time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f} after)")
            print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
