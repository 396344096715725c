"""Running the network: its place on the device, plain tensors, on the CPU several lanes at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from monai.data import MetaTensor
from monai.inferers import SimpleInferer
from torch.nn.parallel import DistributedDataParallel


def place(network: torch.nn.Module, device: torch.device | str, channels_last: bool = True) -> torch.nn.Module:
    """``network`` moved to ``device``; on the CPU (with ``channels_last``) with its 2D
    convolutions' weights in channels-last order, so that its activations follow in that order.

    In eager mode oneDNN's convolutions and PyTorch's GroupNorm run this network faster on
    channels-last tensors on the CPU, at inference and per training step. Under torch.compile
    the default order is the faster one, hence ``channels_last=False`` for a network that will
    be compiled (``bench/bench_speed.py --compile`` times all four; figures in
    docs/benchmarks.md). Outputs move by float rounding (about 1e-4 in the logits). Other
    devices keep PyTorch's default order, which is not timed there.
    """
    device = torch.device(device)
    network = network.to(device)
    return network.to(memory_format=torch.channels_last) if channels_last and device.type == "cpu" else network


class PlainTensorInferer(SimpleInferer):
    """``SimpleInferer`` that gives the network its input as a plain ``torch.Tensor``, and on
    the CPU runs parts of the batch side by side.

    Batches of MONAI's loaders are ``MetaTensor``s: every operation inside the network would
    then also carry and split the batch's metadata, which on a CPU costs as much as the
    arithmetic of this small network. The metadata stays on the batch for the writers.

    Lanes: on the CPU, without gradients, the batch is split into ``cpu_lanes`` parts (at most
    one image each; 0: one per torch thread) that run at the same time, each on a thread of
    its own with an equal share of torch's threads, and the outputs are concatenated. This
    network's layers are too small to keep several cores busy inside one pass: each operator's
    threads meet at its end, and wait there for any that the decoding workers or the writer
    held up. Alone, one-thread lanes run about as fast as one pass; beside the workers and the
    writer, where a core is often taken, lanes are faster (``bench/bench_pipeline.py --sections
    inference`` times both; figures in docs/benchmarks.md). Other devices, gradients, autocast and
    ``DistributedDataParallel`` (whose forward may talk to the other processes) get one pass.
    Each image's output is the same as in one pass, up to float rounding.

    Args:
        cpu_lanes: parts of the batch run at once on the CPU; 0: as many as torch has threads;
            1: one pass.

    Example::

        inferer = PlainTensorInferer(cpu_lanes=0)
        with torch.no_grad():
            logits = inferer(images, network)  # images (B, C, H, W) -> logits (B, out_channels, H, W)
    """

    def __init__(self, cpu_lanes: int = 1) -> None:
        super().__init__()
        if not isinstance(cpu_lanes, int) or isinstance(cpu_lanes, bool) or cpu_lanes < 0:
            raise ValueError(f"cpu_lanes must be 0 (one per torch thread) or a positive integer, got {cpu_lanes!r}")
        self.cpu_lanes = cpu_lanes
        self._pool: ThreadPoolExecutor | None = None
        self._pool_shape = (0, 0)  # (lanes, threads per lane) of the pool

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, MetaTensor):
            inputs = inputs.as_tensor()
        lanes = min(self.cpu_lanes or torch.get_num_threads(), len(inputs))
        one_pass = inputs.device.type != "cpu" or torch.is_grad_enabled() or torch.is_autocast_enabled("cpu")
        if lanes < 2 or one_pass or isinstance(network, DistributedDataParallel):
            return super().__call__(inputs, network, *args, **kwargs)
        inference_mode = torch.is_inference_mode_enabled()  # grad modes belong to a thread

        def lane(part: torch.Tensor) -> Any:
            with torch.inference_mode(inference_mode), torch.no_grad():
                return SimpleInferer.__call__(self, part, network, *args, **kwargs)

        outputs = list(self._lanes(lanes).map(lane, inputs.tensor_split(lanes)))
        if not all(isinstance(output, torch.Tensor) for output in outputs):
            raise TypeError("cpu_lanes > 1 needs a network that returns one tensor; use cpu_lanes 1")
        return torch.cat(outputs)

    def _lanes(self, lanes: int) -> ThreadPoolExecutor:
        """A pool of ``lanes`` threads, each with its share of the caller's torch threads."""
        threads = max(1, torch.get_num_threads() // lanes)
        if self._pool is None or self._pool_shape != (lanes, threads):
            if self._pool is not None:
                self._pool.shutdown()
            # torch.set_num_threads holds for the thread that calls it (OpenMP's setting is per thread)
            self._pool = ThreadPoolExecutor(lanes, "lane", initializer=torch.set_num_threads, initargs=(threads,))
            self._pool_shape = (lanes, threads)
        return self._pool
