"""Network round trips per job on PostgreSQL, counted on asyncpg's connections (not timed).

Every request asyncpg sends and waits on is one round trip: a statement with parameters
(``Connection._execute``: bind and execute in one exchange), a statement without (``execute``:
the simple protocol, which is how ``BEGIN``, ``COMMIT`` and the pool's reset go), and the
preparation of a statement a connection has not seen yet (one more exchange, once per
connection and statement, counted apart)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.model.job import JobState
from bot.model.speech import Origin
from testkit.core import CoreWithFakes
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import RecordingDeliverer, make_config

JOBS = 20
# The poller's own queries run once per round for every due job at once (shared).
_POLLER_CALLS = frozenset({"claim", "next_wakeup", "save_speed_stats", "renew", "release"})
# Limits as a public bot would set them (every check runs).
LIMITS = {
    "jobs_per_minute": 100,
    "concurrent_per_user": 3,
    "concurrent_per_chat": 3,
    "daily_audio_minutes_per_user": 60,
    "daily_audio_minutes_per_chat": 60,
    "daily_tts_chars_per_user": 20000,
    "daily_tts_chars_per_chat": 20000,
}


class Counter:
    """Round trips on every asyncpg connection, attributed to a job or to the poller."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.job = self.rounds = self.prepares = 0
        self.statements: list[str] = []
        conn = asyncpg.connection.Connection
        monkeypatch.setattr(conn, "_execute", self._wrap(conn._execute))
        monkeypatch.setattr(conn, "execute", self._simple(conn.execute))
        monkeypatch.setattr(conn, "_get_statement", self._prepare(conn._get_statement))

    def _count(self, sql: str) -> None:
        callers = {frame.name for frame in traceback.extract_stack(limit=14)}
        if callers & _POLLER_CALLS:
            self.rounds += 1
        else:
            self.job += 1
            self.statements.append(sql.split(None, 1)[0])

    def _wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            self._count(query)
            return call(conn, query, *args, **kwargs)

        return counted

    def _simple(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if not args:  # with arguments it goes through _execute (counted there)
                self._count(query)
            return call(conn, query, *args, **kwargs)

        return counted

    def _prepare(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if conn._stmt_cache.get(query) is None:
                self.prepares += 1
            return call(conn, query, *args, **kwargs)

        return counted


async def _lifecycle(
    tmp_path: Path,
    pg_url: str,
    nano: FakeNanoGpt,
    canto: FakeCantonese,
    monkeypatch: pytest.MonkeyPatch,
    *,
    speak: bool = False,
    limits: dict[str, Any] | None = None,
) -> tuple[Counter, RecordingDeliverer]:
    config = make_config(
        tmp_path,
        nano_url=nano.url,
        canto_url=canto.url,
        storage={"url": pg_url},
        stt={"provider": "nanogpt", "model": "Whisper-Large-V3"},
        limits=limits or {},
    )
    fakes = CoreWithFakes(config, steps=40)
    core = await fakes.open()
    counter = Counter(monkeypatch)
    try:
        note = make_tone(2.0, "ogg")
        for i in range(JOBS):
            origin = Origin(platform="test", chat_id=f"chat-{i}", user_id=f"u-{i}", reply_to="m")
            if speak:
                await core.service.speak(origin, f"Hello number {i}, how are you?")
            else:
                await core.service.transcribe(origin, note, "voice.ogg")
        await fakes.drive()
    finally:
        await fakes.close()
    return counter, fakes.out


@pytest.mark.parametrize("limits", [None, LIMITS], ids=["no-limits", "limits"])
async def test_round_trips_postgres_transcript_at_most_six(
    tmp_path: Path,
    pg_url: str,
    nano: FakeNanoGpt,
    canto: FakeCantonese,
    monkeypatch: pytest.MonkeyPatch,
    limits: dict[str, Any] | None,
) -> None:
    counter, out = await _lifecycle(tmp_path, pg_url, nano, canto, monkeypatch, limits=limits)
    assert len(out.delivered) == JOBS
    assert all(job.state is JobState.COMPLETED for job, _ in out.delivered)
    # settings, (limits read), create, begin submit, complete (+ NOTIFY), deliver: one round
    # trip each; no BEGIN/COMMIT and no pool reset around them (before: 12 without limits, 16
    # with them, and 5.7 per job of the poller's, the pool's resets included).
    per_job = counter.job / JOBS
    assert per_job <= (5 if limits is None else 6), counter.statements
    assert "BEGIN" not in counter.statements and "COMMIT" not in counter.statements
    assert counter.rounds <= 3 * JOBS  # shared claims: a few per poller round


async def test_round_trips_postgres_voice_clip_one_per_step(
    tmp_path: Path,
    pg_url: str,
    nano: FakeNanoGpt,
    canto: FakeCantonese,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter, out = await _lifecycle(tmp_path, pg_url, nano, canto, monkeypatch, speak=True)
    assert len(out.delivered) == JOBS
    assert all(job.state is JobState.COMPLETED for job, _ in out.delivered)
    # settings, the reuse lookup, create, begin submit, complete with the clip and the
    # wake-up in one statement, deliver (before: 13).
    assert counter.job / JOBS <= 6, counter.statements
    assert "BEGIN" not in counter.statements
