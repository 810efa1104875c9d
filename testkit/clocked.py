"""A Core on a fake clock with a recording deliverer: jobs driven step by step, no sleeping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.app.core import Core
from bot.model.job import Job
from testkit.fakes.audio import make_tone
from testkit.support import ORIGIN, FakeClock, RecordingDeliverer, make_config


class Bench:
    """A Core on a fake clock (a recording deliverer for platform "test") against the fakes."""

    def __init__(self, core: Core, clock: FakeClock, out: RecordingDeliverer) -> None:
        self.core, self.clock, self.out = core, clock, out

    async def drive(self, steps: int = 40, dt: float = 1.0) -> list[float]:
        """Run due work, jumping the clock to the next due time; returns the gaps jumped."""
        gaps: list[float] = []
        for _ in range(steps):
            await self.core.poller.run_once()
            next_at = await self.core.store.claims.next_wakeup(["test"])
            if next_at is None:
                break
            gap = max(dt, next_at - self.clock.now)
            gaps.append(gap)
            self.clock.now += gap
        return gaps

    async def stt(self, seconds: float = 1.0) -> Job:
        return await self.core.service.transcribe(ORIGIN, make_tone(seconds), "v.ogg")

    async def only_result(self) -> Job:
        [(job, _)] = self.out.delivered
        return job


@contextlib.asynccontextmanager
async def bench(tmp_path: Path, nano_url: str, **sections: Any) -> AsyncIterator[Bench]:
    config = make_config(tmp_path, nano_url=nano_url, **sections)
    clock = FakeClock()
    core = await Core.open(config, clock=clock)
    out = RecordingDeliverer()
    core.worker.register("test", out)
    try:
        yield Bench(core, clock, out)
    finally:
        await core.close()
