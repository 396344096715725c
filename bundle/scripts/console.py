"""What runs show on the console: a progress bar on a terminal, one log line per training
epoch, one summary line at the end of inference and evaluation.

Per-iteration values go to TensorBoard only, so a log sent to a file or a pipe holds one
line per epoch (and the validation lines) instead of a line per iteration or progress-bar
redraws.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from monai.handlers import from_engine

from .image_files import ImageFolder, finish_run

logger = logging.getLogger(__name__)

_loss = from_engine(["loss"], first=True)


class TerminalProgressBar(ProgressBar):
    """Ignite's progress bar of the current epoch with its time left, shown only when stderr
    is a terminal. The bar is cleared at the end of each epoch, so a terminal shows one bar
    under the log lines.

    Args:
        output_transform: engine output -> the value shown next to the bar as ``output_name``;
            None shows none.
        output_name: the value's name.
    """

    def __init__(self, output_transform: Callable[[Any], Any] | None = None, output_name: str = "loss") -> None:
        super().__init__(persist=False, disable=not sys.stderr.isatty())
        self.output_transform = output_transform
        self.output_name = output_name

    def attach(self, engine: Engine, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # MONAI's workflows call attach(engine) alone
        if self.output_transform is not None:
            kwargs.setdefault("output_transform", lambda output: {self.output_name: self.output_transform(output)})
        super().attach(engine, *args, **kwargs)


class RunSummary:
    """Ends an inference or evaluation run with one log line: how many masks were written where,
    how many files were skipped, and the time.

    Attach it after the handler that writes the masks, so that the line follows the last file.

    Args:
        output_dir: where the masks are written.
        data: the datalist the run segments (one mask per item).
        images: the folder ``data`` was listed from; its skipped files are then counted and
            listed in ``output_dir/skipped.txt``.
    """

    def __init__(self, output_dir: str | Path, data: Sized, images: ImageFolder | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.data = data
        self.images = images
        self._start = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()

    def _completed(self, engine: Engine) -> None:
        skipped = self.images.skipped if self.images is not None else ()
        finish_run(self.output_dir, len(self.data), time.perf_counter() - self._start, skipped)


class EpochLog:
    """Logs one line per training epoch: mean loss, learning rate, the epoch's wall time
    (validation included when it runs at the end of the epoch) and the time left, estimated
    from the epochs of this run.

    Attach it after the ValidationHandler so that the line follows the epoch's validation.

    Args:
        optimizer: its first parameter group's learning rate is logged.
        output_transform: engine output -> the loss of the iteration.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, output_transform: Callable[[Any], Any] = _loss) -> None:
        self.optimizer = optimizer
        self.output_transform = output_transform
        self._loss_sum = 0.0
        self._iterations = 0
        self._epoch_start = 0.0
        self._learning_rate = 0.0
        self._run_start = 0.0
        self._epochs_run = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _started(self, engine: Engine) -> None:
        self._run_start = time.perf_counter()
        self._epochs_run = 0

    def _epoch_started(self, engine: Engine) -> None:
        self._loss_sum, self._iterations = 0.0, 0
        self._epoch_start = time.perf_counter()
        self._learning_rate = self.optimizer.param_groups[0]["lr"]  # the scheduler steps at the epoch's end

    def _iteration_completed(self, engine: Engine) -> None:
        self._loss_sum += float(self.output_transform(engine.state.output))
        self._iterations += 1

    def _epoch_completed(self, engine: Engine) -> None:
        now = time.perf_counter()
        self._epochs_run += 1
        epoch, max_epochs = engine.state.epoch, engine.state.max_epochs or engine.state.epoch
        left = (now - self._run_start) / self._epochs_run * (max_epochs - epoch)
        logger.info(
            "epoch %d/%d: train_loss %.4f over %d iterations, learning rate %.3g, %.1f s, %s left",
            epoch,
            max_epochs,
            self._loss_sum / max(self._iterations, 1),
            self._iterations,
            self._learning_rate,
            now - self._epoch_start,
            _duration(left),
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
