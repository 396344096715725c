"""Stopping a training run the moment its loss or weights stop being finite numbers.

Ignite's ``TerminateOnNan`` ends such a run quietly with exit status 0; here the run stops
with an error naming the epoch, the iteration and the likely cause, and nothing of the
broken state is written (the savers call :func:`require_finite` as well).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import from_engine

from .errors import NonFiniteError


def _named_tensors(tree: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _named_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _named_tensors(value, f"{prefix}.{index}" if prefix else str(index))


def non_finite_names(tree: Any) -> list[str]:
    """Names of the floating-point tensors in ``tree`` (nested dicts/lists) with a NaN or inf."""
    return [name for name, t in _named_tensors(tree) if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def require_finite(tree: Any, what: str) -> None:
    """Raises NonFiniteError when a floating-point tensor in ``tree`` is not finite."""
    bad = non_finite_names(tree)
    if bad:
        raise NonFiniteError(f"{what}: {len(bad)} tensors hold NaN or infinite values (first: {bad[0]}); not saved")


class StopOnNonFinite:
    """Raises :class:`NonFiniteError` after the first iteration whose loss or updated weights
    are not finite, before anything of that epoch can be saved.

    Args:
        network: the trained network (its parameters are checked after each update).
        optimizer: its optimiser, for the learning rate named in the message.
    """

    def __init__(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.network = network
        self.optimizer = optimizer

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, trainer: Engine) -> None:
        loss = from_engine(["loss"], first=True)(trainer.state.output)
        loss = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if math.isfinite(loss):
            # one device sync for all parameters; names are looked up only when one is bad
            if bool(torch.stack([p.isfinite().all() for p in self.network.parameters()]).all()):
                return
            weights = non_finite_names(dict(self.network.named_parameters()))
            what = f"{len(weights)} weights became NaN or infinite (first: {weights[0]})"
        else:
            what = f"the loss is {loss}"
        state = trainer.state
        iteration = (state.iteration - 1) % state.epoch_length + 1
        raise NonFiniteError(
            f"epoch {state.epoch}, iteration {iteration}/{state.epoch_length}: {what}. Likely causes: a learning_rate "
            f"too high (it is {self.optimizer.param_groups[0]['lr']:g}; the paper uses 0.001), or NaN or infinite "
            "values in the images or labels. Nothing of this epoch was saved: model.pt and "
            "checkpoint_epoch=N.pt in output_dir, if any, hold the last good state"
        )
