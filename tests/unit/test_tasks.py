"""``typogram.tasks.Supervisor``: strong references, failures logged and counted, stop."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from prometheus_client import CollectorRegistry, Counter

from typogram.tasks import Supervisor


def _counter() -> Counter:
    return Counter("t_failures", "test", ["task"], registry=CollectorRegistry())


async def _fail(after: float = 0.0) -> None:
    await asyncio.sleep(after)
    raise ValueError("boom")


async def test_a_lasting_task_that_dies_is_failed_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = _counter()
    async with Supervisor(failures) as tasks:
        task = tasks.start("subscriber", _fail(), lasting=True)
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback
        assert tasks.failed == {"subscriber": "error: ValueError"}
        assert failures.labels("subscriber")._value.get() == 1
        assert len(tasks) == 0
    assert any(
        "background task subscriber failed" in r.getMessage() and r.levelno == logging.ERROR
        for r in caplog.records
    )


async def test_a_short_task_that_fails_is_counted_but_not_failed() -> None:
    failures = _counter()
    async with Supervisor(failures) as tasks:
        await asyncio.wait([tasks.start("flush", _fail())])
        await asyncio.sleep(0)
        assert tasks.failed == {}
        assert failures.labels("flush")._value.get() == 1


async def test_a_task_that_ends_well_or_is_cancelled_is_not_a_failure() -> None:
    failures = _counter()
    async with Supervisor(failures) as tasks:
        done = tasks.start("done", asyncio.sleep(0), lasting=True)
        sleeping = tasks.start("sleeping", asyncio.sleep(60), lasting=True)
        await asyncio.wait([done])
        sleeping.cancel()
        await asyncio.wait([sleeping])
        await asyncio.sleep(0)
        assert tasks.failed == {}
        assert failures.labels("done")._value.get() == 0


async def test_tasks_are_held_until_they_end() -> None:
    ran = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.01)
        ran.set()

    async with Supervisor() as tasks:
        tasks.start("unreferenced", work())  # the caller keeps no reference
        gc.collect()
        assert len(tasks) == 1
        await asyncio.wait_for(ran.wait(), 1.0)


async def test_stop_cancels_and_awaits_everything_and_refuses_more() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks = Supervisor()
    task = tasks.start("forever", forever(), lasting=True)
    await asyncio.sleep(0)
    await tasks.stop()
    assert task.cancelled() and cancelled.is_set()
    assert len(tasks) == 0 and tasks.failed == {}
    with pytest.raises(RuntimeError, match="stopped"):
        tasks.start("late", asyncio.sleep(0))


async def test_report_logs_and_counts_an_owned_task(caplog: pytest.LogCaptureFixture) -> None:
    failures = _counter()
    tasks = Supervisor(failures)
    tasks.report("ws-writer", RuntimeError("x"))
    tasks.report("ws-writer", RuntimeError("y"))
    assert failures.labels("ws-writer")._value.get() == 2
    assert tasks.failed == {}  # an owned task's failure is its owner's to handle
    assert "background task ws-writer failed" in caplog.text
