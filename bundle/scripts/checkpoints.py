"""Resuming training from the latest full-state checkpoint in ``output_dir``."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ignite.engine import Engine
from monai.handlers import CheckpointLoader, CheckpointSaver

from networks import load_reference_weights

logger = logging.getLogger(__name__)

# CheckpointSaver(save_interval=1) names its files checkpoint_epoch=<N>.pt
_LATEST = re.compile(r"checkpoint_epoch=(\d+)\.pt")


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The full-state checkpoint of the highest epoch in ``output_dir``, if any."""
    found = [(int(m.group(1)), p) for p in Path(output_dir).glob("checkpoint_epoch=*.pt") if (m := _LATEST.fullmatch(p.name))]
    return max(found)[1] if found else None


def resume_if_possible(trainer: Engine, output_dir: str | Path, full_state: dict[str, Any]) -> Path | None:
    """Makes ``trainer`` restore ``full_state`` from the latest checkpoint when it starts.

    The trainer then continues with the epoch after the saved one, up to its own
    ``max_epochs``. Returns the checkpoint used, or None for a fresh start.
    """
    path = latest_checkpoint(output_dir)
    if path is None:
        logger.info("no checkpoint_epoch=*.pt in %s: training from the start", output_dir)
        return None
    logger.info("resuming from %s", path)
    # the network's part now, so that a checkpoint of another configuration (e.g. pvm_groups)
    # stops the run with the loader's clear error rather than a shape traceback at the start
    load_reference_weights(full_state["model"], path)
    CheckpointLoader(load_path=str(path), load_dict=full_state, map_location="cpu").attach(trainer)
    return path


class BestMetricState:
    """The best-DSC record of a CheckpointSaver, as a state dict for the full-state checkpoint.

    Without it a resumed run would overwrite model.pt at its first validation even when that
    is worse than the best score before the restart.
    """

    def __init__(self, saver: CheckpointSaver) -> None:
        self.saver = saver

    def state_dict(self) -> dict[str, Any]:
        # CheckpointSaver exposes load_state_dict but no state_dict for its key-metric record
        return self.saver._key_metric_checkpoint.state_dict()  # type: ignore[union-attr]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saver.load_state_dict(state)
