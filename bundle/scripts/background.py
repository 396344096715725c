"""Writing outputs on a background thread while the network runs on the next batch."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ignite.engine import Engine, Events

logger = logging.getLogger(__name__)


class InBackground:
    """Runs ``transform`` on each item on one background thread and returns the item at once.

    For the last, output-only steps of a workflow's postprocessing (resizing masks back,
    encoding and writing files): their results are not returned, so nothing after them may
    depend on them. Pillow's encoders and torch release the GIL, so the writing overlaps with
    the next batch's forward pass. At most ``max_pending`` items wait; a failure is raised
    in the workflow at the next item or when the run completes. Attach it to the engine (list
    it among the handlers) so that a run ends only when every file is written.

    Args:
        transform: a callable on one (decollated) item, e.g. a ``Compose`` of writers.
        max_pending: items queued or running at once; bounds the memory they hold.
    """

    def __init__(self, transform: Callable[[Any], Any], max_pending: int = 8) -> None:
        self.transform = transform
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._pending: deque[Future] = deque()

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.max_pending):
            self._pending.popleft().result()  # re-raises a failure of an earlier item
        self._pending.append(self._executor.submit(self.transform, dict(data)))
        return data

    def wait(self, engine: Engine | None = None) -> None:
        """Blocks until every submitted item is done; raises the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self.wait)
