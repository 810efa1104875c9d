"""The one core-with-fakes factory: a real Core on a fake clock, a recording deliverer (for
platform "test" unless told), and a ``drive`` that runs due work without sleeping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.app.core import Core
from bot.config.load import Config
from bot.jobs.poller import Reach
from bot.model.job import Job
from testkit.fakes.audio import make_tone
from testkit.support import ORIGIN, FakeClock, RecordingDeliverer, make_config


class CoreWithFakes:
    """A Core on a fake clock with a recording deliverer (``out``) for ``platform``.

    :meth:`open` and :meth:`close` may be called by hand for restart tests (a second instance on
    the same config is the process after a crash); :func:`core_with_fakes` does both for you.
    """

    def __init__(
        self, config: Config, *, steps: int = 30, dt: float = 1.0, platform: str = "test"
    ) -> None:
        self.config, self.platform = config, platform
        self.clock = FakeClock()
        self.out = RecordingDeliverer()
        self._core: Core | None = None
        self._steps, self._dt = steps, dt

    @property
    def core(self) -> Core:
        """The open core (opened by :meth:`open`)."""
        assert self._core is not None, "open() first"
        return self._core

    async def open(self) -> Core:
        """Open the core, register the deliverer and settle what a crash left, as ``run`` does."""
        self._core = await Core.open(self.config, clock=self.clock)
        self._core.worker.register(self.platform, self.out)
        await self._core.worker.recover(self.clock())
        return self._core

    async def __aenter__(self) -> CoreWithFakes:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._core is not None:
            await self._core.close()
            self._core = None

    async def drive(self, steps: int | None = None, dt: float | None = None) -> list[float]:
        """Run due work, jumping the clock ``dt`` seconds or to the next due time, until nothing
        is left (``steps`` rounds at most); returns the gaps jumped."""
        gaps: list[float] = []
        for _ in range(self._steps if steps is None else steps):
            await self.core.poller.run_once()
            next_at = await self.core.store.claims.next_wakeup(Reach([self.platform]))
            if next_at is None:
                break
            gap = max(self._dt if dt is None else dt, next_at - self.clock.now)
            gaps.append(gap)
            self.clock.now += gap
        return gaps

    async def stt(self, seconds: float = 1.0) -> Job:
        """A transcription of a ``seconds`` long tone, queued for :data:`ORIGIN`."""
        return await self.core.service.transcribe(ORIGIN, make_tone(seconds), "v.ogg")

    async def only_result(self) -> Job:
        """The one delivered job (fails unless exactly one was delivered)."""
        [(job, _)] = self.out.delivered
        return job


@contextlib.asynccontextmanager
async def core_with_fakes(
    tmp_path: Path,
    *,
    config: Config | None = None,
    steps: int = 40,
    dt: float = 1.0,
    **sections: Any,
) -> AsyncIterator[CoreWithFakes]:
    """An open :class:`CoreWithFakes`, closed on exit.

    Args:
        tmp_path: where the SQLite database lives (unless ``config`` says otherwise).
        config: a ready config; by default :func:`testkit.support.make_config` builds one from
            ``sections`` (``nano_url=``, ``canto_url=`` and config sections such as ``stt=``).
        steps: how many rounds :meth:`CoreWithFakes.drive` runs at most.
        dt: the smallest clock jump between rounds.
    """
    async with CoreWithFakes(
        config or make_config(tmp_path, **sections), steps=steps, dt=dt
    ) as fakes:
        yield fakes
