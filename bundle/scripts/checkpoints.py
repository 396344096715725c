"""The files a training run keeps in ``output_dir``: best weights, the latest full state, resuming.

Both savers write through :func:`scripts.atomic.write_atomically` and refuse non-finite
weights, so a run killed at any moment (even while it writes) leaves complete files, and
the same command resumes it. Only the newest ``checkpoint_epoch=N.pt`` is kept, across
restarts too. MONAI's ``CheckpointSaver`` writes in place and deletes the previous file
before it writes the next one, so a kill between the two would leave nothing to resume from.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from networks import load_reference_weights

from .atomic import remove_partial_files, write_atomically
from .errors import SettingsError
from .nonfinite import require_finite

logger = logging.getLogger(__name__)

_LATEST = re.compile(r"checkpoint_epoch=(\d+)\.pt")
# files exported from the published weights (TorchScript, ONNX), which a publish makes stale
EXPORT_SUFFIXES = (".ts", ".onnx")
REBUILD_NOTE = "REBUILD.txt"
REBUILD_TEXT = """{models}/{weights} now holds weights published by a training run. The files exported from the
weights it replaced no longer match it, so they were moved here: {moved}.
Export them again from the new weights, in the bundle folder:

  python -m monai.bundle ckpt_export network_def --filepath {models}/model.ts --ckpt_file {models}/{weights} \\
      --meta_file configs/metadata.json --config_file configs/inference.yaml
  python commands/export_onnx.py --ckpt_path {models}/{weights} --output {models}/model.onnx   # needs onnx, onnxscript, onnxruntime
"""


def _kept_name(path: Path, stamp: str) -> Path:
    """``replaced/<stem>_<stamp><suffix>`` beside ``path``, numbered if that name is taken."""
    return next(
        name
        for n in itertools.count(1)
        if not (name := path.parent / "replaced" / f"{path.stem}_{stamp}{f'_{n}' if n > 1 else ''}{path.suffix}").exists()
    )


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The full-state checkpoint of the highest epoch in ``output_dir``, if any."""
    found = [(int(m.group(1)), p) for p in Path(output_dir).glob("checkpoint_epoch=*.pt") if (m := _LATEST.fullmatch(p.name))]
    return max(found)[1] if found else None


def _remove_older_checkpoints(output_dir: str | Path, keep: Path) -> None:
    for path in Path(output_dir).glob("checkpoint_epoch=*.pt"):
        if _LATEST.fullmatch(path.name) and path != keep:
            path.unlink(missing_ok=True)  # DDP ranks all tidy up when they resume
            logger.debug("removed %s", path)


def resume_if_possible(trainer: Engine, output_dir: str | Path, full_state: dict[str, Any]) -> Path | None:
    """Makes ``trainer`` restore ``full_state`` from the latest checkpoint when it starts.

    Files left by a killed run (partial writes, an older checkpoint) are removed first. The
    trainer then continues with the epoch after the saved one, up to its own ``max_epochs``.
    Returns the checkpoint used, or None for a fresh start.
    """
    for leftover in remove_partial_files(output_dir) if Path(output_dir).is_dir() else []:
        logger.info("removed %s, left by an interrupted run", leftover)
    path = latest_checkpoint(output_dir)
    if path is None:
        logger.info("no checkpoint_epoch=*.pt in %s: training from the start", output_dir)
        return None
    _remove_older_checkpoints(output_dir, keep=path)
    logger.info("resuming from %s", path)
    # the network's part now, so that a checkpoint of another configuration (e.g. pvm_groups)
    # stops the run with the loader's clear error rather than a shape traceback at the start
    try:
        load_reference_weights(full_state["model"], path)
    except ValueError as error:
        raise SettingsError(
            f"{' '.join(str(error).split())}\nresume with the settings {path.name} was trained with, or choose another output_dir"
        ) from error
    CheckpointLoader(load_path=str(path), load_dict=full_state, map_location="cpu").attach(trainer)
    return path


class LatestStateSaver:
    """Writes ``save_dict``'s states to ``save_dir/checkpoint_epoch=N.pt`` after every epoch.

    The previous checkpoint is removed only once the new one is complete.

    Args:
        save_dir: the training's output_dir.
        save_dict: name -> object with ``state_dict()`` (network, optimiser, trainer, ...);
            the ``model`` entry must hold finite weights.
    """

    def __init__(self, save_dir: str | Path, save_dict: dict[str, Any]) -> None:
        self.save_dir = Path(save_dir)
        self.save_dict = save_dict

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, trainer: Engine) -> None:
        state = {name: obj.state_dict() for name, obj in self.save_dict.items()}
        require_finite(state, f"the full state of epoch {trainer.state.epoch}")
        path = self.save_dir / f"checkpoint_epoch={trainer.state.epoch}.pt"
        write_atomically(path, lambda partial: torch.save(state, partial))
        _remove_older_checkpoints(self.save_dir, keep=path)
        logger.debug("saved %s", path)


class BestWeightsSaver:
    """Writes the network's weights (a plain state dict) to ``save_dir/filename`` whenever the
    evaluator's ``metric_name`` beats its best so far; without validation cases, after every
    training epoch (the latest weights are then the best known).

    With ``publish_path`` (the bundle's ``models/model.pt``, which inference and MONAI Label
    serve) each saved file is also written there, so that a server that reloads the file when
    it changes serves the new weights at once. The file found there when the run first
    publishes is kept first, as ``replaced/model_<time>.pt`` beside it: a run never loses the
    weights it replaces, and later bests of the same run replace only its own.

    Its ``state_dict`` (the best score and epoch) travels in the full-state checkpoint, so a
    resumed run does not overwrite better weights saved before the restart.
    """

    def __init__(
        self,
        save_dir: str | Path,
        network: torch.nn.Module,
        metric_name: str,
        filename: str = "model.pt",
        publish_path: str | Path | None = None,
    ) -> None:
        self.path = Path(save_dir) / filename
        self.network = network
        self.metric_name = metric_name
        self.publish_path = Path(publish_path) if publish_path else None
        self.best_metric = -math.inf
        self.best_epoch = 0
        self._kept_replaced = False

    def attach(self, evaluator: Engine, trainer: Engine | None = None) -> None:
        """Saves after each of ``evaluator``'s runs, or after each of ``trainer``'s epochs when
        the evaluator has no cases (MONAI's evaluator then skips its runs)."""
        if trainer is not None and len(evaluator.data_loader) == 0:
            logger.info("no validation cases: %s will hold the weights of the latest epoch", self.path)
            trainer.add_event_handler(Events.EPOCH_COMPLETED, self._save)
        else:
            evaluator.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, evaluator: Engine) -> None:
        score = float(evaluator.state.metrics[self.metric_name])
        if not score > self.best_metric:
            return
        self.best_metric = score
        self._save(evaluator)
        logger.info("new best %s %.4f at epoch %d: saved %s", self.metric_name, score, self.best_epoch, self.path)

    def _save(self, engine: Engine) -> None:
        weights = self.network.state_dict()
        require_finite(weights, f"the weights of epoch {engine.state.epoch}")
        write_atomically(self.path, lambda partial: torch.save(weights, partial))
        self.best_epoch = engine.state.epoch
        if self.publish_path is not None:
            self._publish(weights)

    def _publish(self, weights: dict[str, torch.Tensor]) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if not self._kept_replaced and self.publish_path.is_file():
            kept = _kept_name(self.publish_path, stamp)
            write_atomically(kept, lambda partial: shutil.copy2(self.publish_path, partial))
            logger.info("kept the weights %s served until now as %s", self.publish_path, kept)
        self._kept_replaced = True
        self._move_exports_aside(stamp)
        write_atomically(self.publish_path, lambda partial: torch.save(weights, partial))
        logger.info("published the weights of epoch %d as %s", self.best_epoch, self.publish_path)

    def _move_exports_aside(self, stamp: str) -> None:
        """Moves the files exported from the weights being replaced (``model.ts``, ``model.onnx``
        beside ``model.pt``) to ``replaced/``, with a note on how to export them again.

        They are moved, not exported again: a run publishes at each new best, the ONNX export
        needs packages that a training environment (MONAI Label's) may lack, and the note's two
        commands rebuild both from the weights the run ends with.
        """
        moved = []
        for suffix in EXPORT_SUFFIXES:
            export = self.publish_path.with_suffix(suffix)
            if export.is_file():
                target = _kept_name(export, stamp)
                target.parent.mkdir(parents=True, exist_ok=True)
                export.replace(target)
                moved.append(target.name)
        if not moved:
            return
        folder = self.publish_path.parent
        note = folder / "replaced" / REBUILD_NOTE
        text = REBUILD_TEXT.format(weights=self.publish_path.name, moved=", ".join(moved), models=folder.name)
        write_atomically(note, lambda partial: Path(partial).write_text(text))
        logger.info("moved %s aside (%s says how to export them again)", ", ".join(moved), note)

    def state_dict(self) -> dict[str, Any]:
        return {"best_metric": self.best_metric, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_metric, self.best_epoch = float(state["best_metric"]), int(state["best_epoch"])
