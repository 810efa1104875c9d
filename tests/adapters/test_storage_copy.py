"""``voicebot db copy``: an existing SQLite install moves to PostgreSQL (or another file) whole."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.cli import main
from bot.jobs.poller import Reach
from bot.jobs.steps import Completion, Submission
from bot.model.job import Blob, JobKind, NewJob
from bot.model.speech import Origin
from bot.storage import open_store

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7", extra={"source": "u:1"})


async def _fill(path: Path) -> list[str]:
    store = await open_store(path)
    try:
        ids = []
        for i in range(7):
            new = NewJob(JobKind.STT, ORIGIN, "nanogpt", "m", {"i": i}, 1e12, input_duration=2.0)
            job = await store.create(new, now=100.0 + i, input_blob=Blob(b"a" * i, "a.ogg", None))
            ids.append(job.id)
        await store.claims.claim(
            200.0, Reach(["telegram"]), 1, 30.0
        )  # a lease that must not travel
        await store.steps.begin_submit(ids[1], 201.0)
        await store.steps.mark_submitted(
            ids[1], Submission({"run": 1}, next_poll_at=300.0, cost=0.5), 202.0
        )
        tts = NewJob(JobKind.TTS, ORIGIN, "nanogpt", "k", {"chars": 9}, 1e12)
        clip = await store.create(tts, now=150.0)
        await store.steps.begin_submit(clip.id, 151.0)
        await store.steps.complete(
            clip.id, Completion({"duration": 1.0}, output_blob=Blob(b"ogg", "v", "a")), 152.0
        )
        await store.usage.put_settings("telegram", "42", {"language": "de"}, 1.0)
        await store.usage.put_user_settings("telegram", "7", {"voice": "af_bella"}, 1.0)
        await store.usage.save_speed_stats(("nanogpt", "m", "stt"), {"sw": 3.0, "samples": 2}, 1.0)
        return [*ids, clip.id]
    finally:
        await store.close()


async def _snapshot(target: str) -> tuple[object, ...]:
    store = await open_store(target)
    try:
        jobs = sorted(await store.recent(100), key=lambda j: j.id)
        blobs = [await store.kept.load_blob(j.id, r) for j in jobs for r in ("input", "output")]
        return (
            jobs,
            blobs,
            await store.usage.get_settings("telegram", "42"),
            await store.usage.get_user_settings("telegram", "7"),
            await store.usage.load_speed_stats(),
            await store.usage.usage(0.0),
        )
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'copy.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


async def test_db_copy_moves_everything_and_refuses_a_non_empty_target(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "old.sqlite3"
    ids = await _fill(source)
    before = await _snapshot(str(source))
    assert await asyncio_main(["db", "copy", str(source), target]) == 0
    assert "8 jobs" in capsys.readouterr().out
    after = await _snapshot(target)
    jobs_before, jobs_after = before[0], after[0]
    assert isinstance(jobs_before, list) and isinstance(jobs_after, list)
    assert [j.id for j in jobs_after] == sorted(ids)
    assert all(j.lease_owner is None for j in jobs_after)
    assert jobs_after == [replace(j, lease_owner=None, lease_until=None) for j in jobs_before]
    assert after[1:] == before[1:]
    assert await asyncio_main(["db", "copy", str(source), target]) == 1
    assert "not empty" in capsys.readouterr().err
    missing = tmp_path / "typo.sqlite3"
    assert await asyncio_main(["db", "copy", str(missing), target]) == 1
    assert "no such SQLite database file" in capsys.readouterr().err
    assert not missing.exists()  # not created empty on the way


async def asyncio_main(argv: list[str]) -> int:
    """``main`` runs its own event loop: call it from a worker thread."""
    import asyncio

    return await asyncio.to_thread(main, argv)
