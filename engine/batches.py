"""Calls from many threads coalesced into batches: a `Coalescer`.

Some work costs mostly per call, not per item: a model's forward pass (one prompt or thirty-two take
about as long on a CPU), an fsync (one line or a hundred). When concurrent callers each do it alone they
queue behind each other; a `Coalescer` lets the first caller that finds nothing running take every item
waiting, run the work once on all of them, and hand each caller its own result, while callers arriving
meanwhile wait for the next batch. A caller alone pays exactly one call, as without it, so nothing is
delayed to wait for company.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False


class Coalescer(Generic[T, R]):
    """`coalescer(item)` returns `work([..., item, ...])[its position]`, run in batches of at most
    `max_batch` items; an exception raised by `work` is raised to every caller of that batch."""

    def __init__(self, work: Callable[[list[T]], Sequence[R]], *, max_batch: int = 64) -> None:
        self._work = work
        self._max = max(1, int(max_batch))
        self._cond = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._running = False

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._pending.append(slot)
            while not slot.done:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                batch, self._pending = self._pending[: self._max], self._pending[self._max:]
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._running = False
                    for s in batch:
                        s.done = True
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        try:
            results = self._work([s.item for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batched work returned {len(results)} results for {len(batch)} items")
            for s, r in zip(batch, results, strict=True):
                s.result = r
        except BaseException as err:  # handed to each caller of the batch, raised in its own thread
            for s in batch:
                s.error = err
