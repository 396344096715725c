"""Exports the bundle's network to ONNX and checks the model against PyTorch.

    python commands/export_onnx.py [--ckpt_path models/model.pt] [--output models/model.onnx]

from the bundle root (or with the path to this file from anywhere) writes ONE self-contained file (weights inside, standard ONNX operators
only, metadata such as source paths stripped) for images of ``spatial_size`` (from
``configs/inference.yaml``, or ``--spatial_size``) and any batch size, then runs it in
onnxruntime next to the PyTorch network on random images and stops with an error, writing
nothing, when they differ by more than ``--tolerance`` of the largest logit. Input ``image``
(batch, 3, S, S) float32 in [0, 255] (min-max scaled per image); output ``pred`` (batch,
num_classes, S, S) float32 logits.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from monai.bundle import ConfigParser

# run as a script, Python looks in commands/ only: the bundle root holds a standalone bundle's
# vendored `networks` (in the repository, the installed project is found instead)
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
import networks
from networks.onnx_export import export_onnx
from scripts.atomic import write_atomically
from scripts.errors import WriteError

logger = logging.getLogger("export_onnx")

INPUT_NAME = "image"
OUTPUT_NAME = "pred"


def build_network(config_file: Path, ckpt_path: Path, num_classes: int | None) -> tuple[torch.nn.Module, int, int]:
    """The config's ``network_def`` with the weights of ``ckpt_path``, its input channels, and
    the config's spatial size."""
    parser = ConfigParser()
    parser.read_config(str(config_file))
    if num_classes is not None:
        parser["num_classes"] = num_classes
    network = networks.load_reference_weights(parser.get_parsed_content("network_def"), ckpt_path)
    return (
        network.eval(),
        int(parser.get_parsed_content("network_def#in_channels")),
        int(parser.get_parsed_content("spatial_size")),
    )


def check_against_pytorch(
    network: torch.nn.Module, model: onnx.ModelProto, shape: tuple[int, int, int], tolerance: float
) -> float:
    """The largest difference between onnxruntime's and PyTorch's outputs on random batches of
    1 and 3 images, relative to the largest logit (at least 1); raises ValueError above
    ``tolerance``. Relative, because float32 rounding grows with the logits' size, which depends
    on the weights."""
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    largest, scale = 0.0, 1.0
    for batch in (1, 3):
        images = torch.rand(batch, *shape, generator=generator) * 255
        with torch.no_grad():
            expected = network(images).numpy()
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
        if actual.shape != expected.shape:
            raise ValueError(f"onnxruntime gave an output of shape {actual.shape} for batch {batch}, expected {expected.shape}")
        largest = max(largest, float(np.abs(actual - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
    if largest > tolerance * scale:
        raise ValueError(
            f"onnxruntime differs from PyTorch by {largest:.2e}, {largest / scale:.1e} of the largest logit {scale:.1f} "
            f"(> --tolerance {tolerance:.0e})"
        )
    return largest / scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", type=Path, default=Path("models/model.pt"), help="weights to export")
    parser.add_argument("--output", type=Path, default=Path("models/model.onnx"), help="the ONNX file to write")
    parser.add_argument("--config_file", type=Path, default=Path("configs/inference.yaml"), help="network_def and spatial_size")
    parser.add_argument("--spatial_size", type=int, help="image side the model takes (default: the config's)")
    parser.add_argument("--num_classes", type=int, help="output channels (default: the config's)")
    parser.add_argument(
        "--tolerance", type=float, default=1e-5, help="largest accepted difference from PyTorch, relative to the largest logit"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(message)s")  # libraries' warnings and errors
    logger.setLevel(logging.INFO)
    for path in (args.ckpt_path, args.config_file):
        if not path.is_file():
            logger.error("error: %s: no such file (run from the bundle root)", path)
            return 1
    torch.set_grad_enabled(False)
    try:
        network, channels, spatial_size = build_network(args.config_file, args.ckpt_path, args.num_classes)
        shape = (channels, args.spatial_size or spatial_size, args.spatial_size or spatial_size)
        if shape[1] % 32 or shape[2] % 32:
            raise ValueError(f"spatial_size must be a multiple of 32, got {shape[1]}")
        start = time.perf_counter()
        model = export_onnx(network, shape, input_name=INPUT_NAME, output_name=OUTPUT_NAME)
        seconds = time.perf_counter() - start
        difference = check_against_pytorch(network, model, shape, args.tolerance)
    except ValueError as error:
        logger.error("error: %s; %s was not written", error, args.output)
        return 1
    try:  # only a checked model replaces the old one, and never half-written
        write_atomically(args.output, lambda path: onnx.save_model(model, str(path)))
    except WriteError as error:
        logger.error("error: %s", error)
        return 1
    logger.info(
        "wrote %s: %.0f KB, %d nodes, input %s (batch, %d, %d, %d), exported in %.0f s; largest difference from PyTorch %.1e of the largest logit",
        args.output,
        args.output.stat().st_size / 1024,
        len(model.graph.node),
        INPUT_NAME,
        *shape,
        seconds,
        difference,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
