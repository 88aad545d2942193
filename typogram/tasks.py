"""Background tasks, supervised: every task a component starts outside a request.

A ``Supervisor`` starts named tasks and holds a strong reference to each until
it ends (the event loop keeps only weak ones). A task that raises is logged
with its name and counted per name (``typogram_task_failures_total``); a
*lasting* task, one meant to run as long as its component (a subscriber, a
monitor), that dies with an error also stays listed in ``failed``, which
``/ready`` reports, so a process whose background work stopped is not ready.
``stop`` cancels what still runs and waits for it. One supervisor lives on the
``Platform``; a component that may be built without one (tests) makes its own.

Tasks tied to an owner that tracks them itself (a connection's writer) report
their failures through ``report``, with the same logging and counting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol, Self, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class FailureCounter(Protocol):
    """Counts failures by task name (a Prometheus ``Counter`` with a ``task`` label)."""

    def labels(self, task: str) -> Any: ...


class Supervisor:
    def __init__(self, failures: FailureCounter | None = None) -> None:
        self._failures = failures
        self._running: dict[asyncio.Task[Any], bool] = {}  # task -> lasting
        self._failed: dict[str, str] = {}
        self._stopped = False

    def start(
        self, name: str, work: Coroutine[Any, Any, T], *, lasting: bool = False
    ) -> asyncio.Task[T]:
        """Run ``work`` as the task ``name``. ``lasting``: it should run until stopped,
        so an error ending it makes the process unready (``failed``)."""
        if self._stopped:
            work.close()
            raise RuntimeError(f"the supervisor is stopped: {name} not started")
        task = asyncio.create_task(work, name=name)
        self._running[task] = lasting
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        lasting = self._running.pop(task, False)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self.report(task.get_name(), exc)
        if lasting and not self._stopped:
            self._failed[task.get_name()] = f"error: {type(exc).__name__}"

    def report(self, name: str, exc: BaseException) -> None:
        """Log and count the failure of the background task ``name``."""
        log.error("background task %s failed", name, exc_info=exc)
        if self._failures is not None:
            self._failures.labels(name).inc()

    @property
    def failed(self) -> dict[str, str]:
        """Lasting tasks that died with an error: name -> ``error: <exception type>``."""
        return dict(self._failed)

    def __len__(self) -> int:
        return len(self._running)

    async def stop(self) -> None:
        """Cancel every task still running and wait for them; starts no more."""
        self._stopped = True
        while self._running:
            running = list(self._running)
            for task in running:
                task.cancel()
            await asyncio.wait(running)  # never swallows our own cancellation

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
