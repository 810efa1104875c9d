"""A platform whose connection is down: its jobs still run, their replies wait for it."""

from __future__ import annotations

from pathlib import Path

from bot.model.job import JobState
from testkit.core import core_with_fakes
from testkit.fakes.providers import FakeNanoGpt


async def test_worker_offline_platform_jobs_run_and_replies_wait(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    async with core_with_fakes(tmp_path, nano_url=nano.url) as b:
        b.core.worker.set_online("test", False)
        job = await b.stt()
        await b.drive(steps=10)
        done = await b.core.store.get(job.id)
        assert done is not None and done.state is JobState.COMPLETED  # sent and finished
        assert b.out.delivered == [] and done.delivery_attempts == 0  # nothing burnt
        b.core.worker.set_online("test", True)
        await b.drive(steps=5)
        assert (await b.only_result()).id == job.id
