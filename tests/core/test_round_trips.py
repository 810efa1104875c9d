"""Store round trips per job lifecycle, counted on the real SQLite connection (not timed)."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.model.job import JobState
from bot.model.speech import Origin
from bot.storage.sqlite import SqliteDatabase
from testkit.core import CoreWithFakes
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import RecordingDeliverer, make_config

JOBS = 20
# The poller's own queries (claims, next wake-up) run once per round for every due job at once,
# and the learned provider speeds are saved now and then; everything else is a job step.
_POLLER_CALLS = frozenset({"claim", "next_wakeup", "save_speed_stats"})
# Before a job exists, the service reads the chat's and the person's settings (one query).
_PREFERENCES = "get_preferences"


class Counter:
    """Wraps the store's database: each fetch/execute/transact is one round trip (a transaction
    sends its statements together), attributed to a job step or to the poller's round; every
    SQL statement sent on the connection is counted too (BEGIN and COMMIT included)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.steps = 0
        self.rounds = 0
        self.preferences = 0
        self.statements = 0
        for name in ("fetch", "execute", "transact"):
            setattr(db, name, self._wrap(getattr(db, name)))
        raw = db._raw
        for name in ("fetch", "execute"):
            setattr(raw, name, self._statements(getattr(raw, name)))

    def _wrap(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        def counted(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            callers = {frame.name for frame in traceback.extract_stack(limit=8)}
            if callers & _POLLER_CALLS:
                self.rounds += 1
            elif _PREFERENCES in callers:
                self.preferences += 1
            else:
                self.steps += 1
            if call.__name__ == "transact":
                self.statements += 2  # BEGIN IMMEDIATE, COMMIT
            return call(*args, **kwargs)

        return counted

    def _statements(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        def counted(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            self.statements += 1
            return call(*args, **kwargs)

        return counted

    def reset(self) -> None:
        self.steps = self.rounds = self.statements = self.preferences = 0


async def _lifecycle(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese, model: str
) -> tuple[Counter, RecordingDeliverer]:
    config = make_config(
        tmp_path,
        nano_url=nano.url,
        canto_url=canto.url,
        stt={"provider": "nanogpt", "model": model},
    )
    fakes = CoreWithFakes(config, steps=40)
    core = await fakes.open()
    assert isinstance(core.store.db, SqliteDatabase)
    counter = Counter(core.store.db)
    try:
        note = make_tone(2.0, "ogg")
        for i in range(JOBS):
            origin = Origin(platform="test", chat_id=f"chat-{i}", user_id=f"u-{i}", reply_to="m")
            await core.service.transcribe(origin, note, "voice.ogg")
        await fakes.drive()
    finally:
        await fakes.close()
    out = fakes.out
    return counter, out


async def test_round_trips_sync_transcript_four_per_job(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    counter, out = await _lifecycle(tmp_path, nano, canto, "Whisper-Large-V3")
    assert len(out.delivered) == JOBS
    assert all(job.state is JobState.COMPLETED for job, _ in out.delivered)
    # create, submit (begin + answer), deliver: one round trip each, nothing re-read; before
    # them, the chat's and the person's settings in one read.
    assert counter.steps == 4 * JOBS
    assert counter.preferences == JOBS
    # The claims are shared by every due job: a handful of rounds for all twenty.
    assert counter.rounds <= 12
    assert (counter.steps + counter.rounds) / JOBS <= 5


async def test_round_trips_async_transcript_five_per_job(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    counter, out = await _lifecycle(tmp_path, nano, canto, "Elevenlabs-STT")
    assert len(out.delivered) == JOBS
    jobs = [job for job, _ in out.delivered]
    assert all(job.state is JobState.COMPLETED for job in jobs)
    polls_after_first = sum(job.poll_count - 1 for job in jobs)
    # create, begin submit, submitted (the progress shown from the returned row), the poll
    # with the result, deliver; one more per poll that found the run still going.
    assert counter.steps == 5 * JOBS + polls_after_first
    assert counter.preferences == JOBS


async def test_round_trips_statements_per_job(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    counter, out = await _lifecycle(tmp_path, nano, canto, "Whisper-Large-V3")
    assert len(out.delivered) == JOBS
    # SQL statements on the connection, BEGIN/COMMIT and the shared claims included (13.7 per
    # job before the steps returned their rows): create's admission read, insert and blob in
    # one transaction, then one statement per step; the settings read is one statement.
    assert counter.statements / JOBS <= 10
