"""Shared test helpers: configs pointing at the local fakes, a fake clock, a recording deliverer
(the core built on them is :mod:`testkit.core`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from adapters import config_readers
from bot.config.load import Config, parse_config
from bot.jobs.delivery import DEFAULT_LEASE, Delivery, Reply
from bot.jobs.metrics import Metrics
from bot.jobs.steps import JobSteps
from bot.jobs.worker import JobWorker
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import Origin, VoiceClip
from bot.storage.jobs import SqlJobStore
from bot.storage.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from bot.storage.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from testkit.fakes.chat import FakeChat
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")
NANO_KEY = "test-nano-key"
CANTO_KEY = "test-canto-key"
CHAT_KEY = "test-chat-key"
Opener = Callable[[], Awaitable[SqlJobStore]]
"""What the ``opener`` fixture gives: opens another store on the test's database."""


def job_worker(
    store: SqlJobStore,
    *,
    clock: Callable[[], float],
    steps: JobSteps | None = None,
    lease: float = DEFAULT_LEASE,
    **kwargs: Any,
) -> JobWorker:
    """A worker wired as the composition root wires it: each store role handed to its user
    (``steps``: a stand-in for the store's own)."""
    metrics = Metrics()
    delivery = Delivery(store.replies, store.kept, store, clock=clock, metrics=metrics, lease=lease)
    return JobWorker(
        steps or store.steps,
        parts=store.parts,
        delivery=delivery,
        recovery=store.claims,
        clock=clock,
        metrics=metrics,
        **kwargs,
    )


def config_dict(
    tmp_path: Path,
    *,
    nano_url: str = "http://127.0.0.1:9/api",
    canto_url: str = "http://127.0.0.1:9",
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """A complete config document whose providers point at local fakes (port 9: discard)."""
    data: dict[str, Any] = {
        "storage": {"path": str(tmp_path / "voicebot.sqlite3")},
        "providers": {
            "nanogpt": {"api_key": NANO_KEY, "base_url": nano_url, "timeout": 10},
            "cantonese": {"api_key": CANTO_KEY, "base_url": canto_url, "timeout": 10},
        },
        "stt": {"provider": "nanogpt", "model": "Whisper-Large-V3"},
        "tts": {"provider": "nanogpt", "model": "Kokoro-82m", "voice": "af_bella"},
        "jobs": {"deadline_seconds": 600, "max_poll_interval": 2},
        "health": {"port": 0},  # any free port: bots in tests never fight over 9464
        # Usage limits are off unless a test sets them (tests/core/test_limits.py does).
        "limits": {
            "jobs_per_minute": 0,
            "concurrent_per_user": 0,
            "concurrent_per_chat": 0,
            "daily_audio_minutes_per_user": 0,
            "daily_audio_minutes_per_chat": 0,
            "daily_tts_chars_per_user": 0,
            "daily_tts_chars_per_chat": 0,
        },
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


def make_config(tmp_path: Path, **kwargs: Any) -> Config:
    """A validated :class:`Config` for tests (see :func:`config_dict`)."""
    return parse_config(config_dict(tmp_path, **kwargs), env={}, platforms=config_readers())


def write_config(tmp_path: Path, **kwargs: Any) -> Path:
    """Write :func:`config_dict` as YAML and return its path (for subprocess tests)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(tmp_path, **kwargs)), encoding="utf-8")
    return path


def a_job(origin: Origin, state: JobState, job_id: str = "ab12cd") -> Job:
    """A speech-to-text job as a store would return it, for code that only reads one."""
    return Job(
        id=job_id,
        kind=JobKind.STT,
        origin=origin,
        provider="p",
        model="m",
        options={},
        state=state,
        created_at=0.0,
        updated_at=0.0,
        deadline_at=1e12,
    )


class FakeClock:
    """A settable clock for poller tests: ``clock()`` returns ``clock.now``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def reply_for(job: Job, clip: VoiceClip | None = None, buttons: tuple[str, ...] = ()) -> Reply:
    """A :class:`Reply` as delivery hands it to an adapter, whose checkpoint records each call
    in ``job.extra`` of the job it returns (nothing is stored)."""
    latest = job

    async def checkpoint(**changes: object) -> Job:
        nonlocal latest
        latest = dataclasses.replace(latest, extra={**latest.extra, **changes})
        return latest

    return Reply(job, clip, buttons, checkpoint)


class RecordingDeliverer:
    """A platform stand-in that records deliveries and progress (the adapters test the real ones).

    ``fail_with`` makes the next deliveries raise, to test retries and permanent refusals.
    """

    def __init__(self) -> None:
        self.delivered: list[tuple[Job, VoiceClip | None]] = []
        self.replies: list[Reply] = []
        self.progressed: list[Job] = []
        self.fail_with: list[Exception] = []
        self._event = asyncio.Event()

    async def deliver(self, reply: Reply) -> str | None:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.replies.append(reply)
        self.delivered.append((reply.job, reply.clip))
        self._event.set()
        return f"msg-{len(self.delivered)}"

    async def progress(self, job: Job) -> None:
        self.progressed.append(job)
        self._event.set()

    async def wait(self, count: int = 1, timeout: float = 10.0) -> None:
        """Until ``count`` replies were delivered."""
        await self._until(lambda: len(self.delivered) >= count, timeout)

    async def wait_progress(self, count: int = 1, timeout: float = 10.0) -> None:
        """Until ``count`` progress updates arrived (one follows each recorded submission)."""
        await self._until(lambda: len(self.progressed) >= count, timeout)

    async def _until(self, done: Callable[[], bool], timeout: float) -> None:
        async def until() -> None:
            while not done():
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(until(), timeout)


def old_sqlite(path: Path, version: int) -> None:
    """A SQLite database file at schema ``version``, as an older release left it (no rows)."""
    with sqlite3.connect(path) as conn:
        for script in SQLITE_MIGRATIONS[:version]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version={version}")


async def old_postgres(url: str, version: int) -> None:
    """The empty PostgreSQL database at ``url`` brought to schema ``version`` (no rows)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE voicebot_schema (version INTEGER NOT NULL)")
        for number, script in enumerate(PG_MIGRATIONS[:version], start=1):
            await conn.execute(script)
            await conn.execute("INSERT INTO voicebot_schema (version) VALUES ($1)", number)
    finally:
        await conn.close()


def ids(jobs: list[Job], key: Callable[[Job], Any] = lambda j: j.id) -> list[Any]:
    """Project a list of jobs, for compact assertions."""
    return [key(j) for j in jobs]


def part_states(db: Path, kind: str) -> list[str]:
    """Part states of the newest job of ``kind``, read from a running bot's database."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            rows = conn.execute(
                "SELECT p.state FROM job_parts p JOIN jobs j ON j.id = p.job_id "
                "WHERE j.kind = ? AND j.created_at = (SELECT MAX(created_at) FROM jobs "
                "WHERE kind = ?) ORDER BY p.idx",
                (kind, kind),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
    return [str(r[0]) for r in rows]


async def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``check()`` holds (polled every 20 ms); fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def harness_config(tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese, **kw: Any) -> Config:
    return make_config(tmp_path, nano_url=nano.url, canto_url=canto.url, **kw)


def unanswered(db: Path) -> int | None:
    """How many jobs in a running bot's SQLite database still owe their answer (finished but
    not recorded delivered, or not finished); None while there is no job yet."""
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            total, owed = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(state != 'cancelled' AND delivered_at IS NULL "
                "AND delivery_error IS NULL), 0) FROM jobs"
            ).fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return None
    return int(owed) if total else None


async def until_answered(db: Path, timeout: float = 60.0) -> None:
    """Until every job in a running bot's SQLite database has its answer recorded (delivered_at
    or a delivery error): the worker answers a job only while that is unrecorded, so replies
    counted after this (and a clean stop) are final, with no sleep to "let a second one come"."""
    await until(lambda: unanswered(db) == 0, timeout)


def whisper_route(whisper: FakeOpenAi, max_upload_bytes: int = 1_000_000) -> dict[str, Any]:
    """Config sections transcribing with the OpenAI fake's whisper-1, whose upload limit makes
    long recordings split (1 MB: parts of about 4 minutes)."""
    return {
        "providers": {
            "whisper": {
                "type": "openai",
                "base_url": whisper.url,
                "api_key": "test-openai-key",
                "max_upload_bytes": max_upload_bytes,
            }
        },
        "stt": {"provider": "whisper", "model": "whisper-1"},
    }


def llm_route(chat: FakeChat) -> dict[str, Any]:
    """Config sections routing summaries and translations to the fake chat server."""
    return {
        "providers": {"brain": {"type": "openai", "base_url": chat.url, "api_key": CHAT_KEY}},
        "llm": {"provider": "brain", "model": "gpt-4o-mini"},
    }
