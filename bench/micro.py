"""Micro-benchmarks: TTS transcode speed, and store queries on a large table."""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench.fakes import tone
from bench.mix import PLATFORM
from bot.audio.codec import probe, to_voice_clip
from bot.jobs.poller import Reach
from bot.storage.sqlite import SqliteJobStore


def probe_note(seconds: float = 2.0, repeats: int = 2000) -> dict[str, float]:
    """CPU of ``probe()`` on one Ogg/Opus voice note (as Telegram sends), mean over N."""
    note = tone(seconds, "ogg", rate=48000)
    probe(note)
    cpu = time.thread_time()
    for _ in range(repeats):
        probe(note)
    return {"audio_seconds": seconds, "cpu_ms": 1000 * (time.thread_time() - cpu) / repeats}


def transcode(seconds: float, repeats: int = 5) -> dict[str, float]:
    """``to_voice_clip`` on ``seconds`` of 24 kHz MP3 (what TTS providers send); best of N.

    ``x_realtime`` is over the CPU time of the one thread doing it (what "one core" means on a
    shared machine, where the wall clock also counts time spent waiting for a core);
    ``x_realtime_wall`` over the wall clock.
    """
    mp3 = tone(seconds, "mp3", rate=24000)
    best_cpu = best_wall = float("inf")
    duration = 0.0
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.thread_time()
        clip = to_voice_clip([mp3])
        best_cpu = min(best_cpu, time.thread_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - start)
        duration = clip.duration
    return {
        "audio_seconds": duration,
        "seconds": best_cpu,
        "x_realtime": duration / best_cpu,
        "x_realtime_wall": duration / best_wall,
    }


_COLUMNS = (
    "id, kind, platform, chat_id, user_id, reply_to, provider, model, options, state, ticket, "
    "poll_count, next_poll_at, deadline_at, result, created_at, updated_at, submitted_at, "
    "completed_at, delivered_at, deliver_after"
)


def _rows(count: int, chats: int, now: float, rng: random.Random) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(count):
        created = now - 30 * 86400 * (1 - i / count)
        roll = rng.random()
        state = "completed" if roll < 0.95 else "submitted" if roll < 0.99 else "queued"
        done = state == "completed"
        rows.append(
            (
                f"{i:06x}",
                "stt" if i % 4 else "tts",
                PLATFORM,
                f"chat{rng.randrange(chats)}",
                f"user{i % 5000}",
                "1",
                "nanogpt",
                "Elevenlabs-STT",
                '{"language": "auto"}',
                state,
                f'{{"runId": "r{i}"}}',
                2,
                None if done else now + rng.uniform(-5, 600),
                created + 1800,
                '{"text": "hello there", "segments": []}' if done else None,
                created,
                created,
                created + 1,
                created + 10 if done else None,
                created + 11 if done else None,
                created + 10 if done else None,
            )
        )
    return rows


def _timed_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


async def store_queries(db: Path, rows: int, lookups: int = 300) -> dict[str, Any]:
    """Fill the jobs table with ``rows`` rows (executemany), then time ``find_for_chat`` and
    ``claim`` through the real store."""
    store = await SqliteJobStore.open(db)  # creates the schema at its current version
    await store.close()
    rng = random.Random(7)
    now = time.time()
    chats = max(1, rows // 100)
    data = _rows(rows, chats, now, rng)
    start = time.perf_counter()
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(data[0]))
        conn.executemany(f"INSERT INTO jobs ({_COLUMNS}) VALUES ({marks})", data)
    fill = time.perf_counter() - start
    store = await SqliteJobStore.open(db)
    try:
        lookup: list[float] = []
        for _ in range(lookups):
            row = data[rng.randrange(rows)]
            t0 = time.perf_counter()
            job = await store.find_for_chat(PLATFORM, row[3], row[0])
            lookup.append(1000 * (time.perf_counter() - t0))
            assert job is not None and job.id == row[0]
        due: list[float] = []
        due_count = 0
        for _ in range(max(20, lookups // 10)):
            t0 = time.perf_counter()
            jobs = await store.claims.claim(time.time(), Reach([PLATFORM]), 100, lease=30.0)
            due.append(1000 * (time.perf_counter() - t0))
            due_count = len(jobs)
            await store.claims.release([j.id for j in jobs])  # the next round claims the same ones
    finally:
        await store.close()
    return {
        "rows": rows,
        "fill_seconds": fill,
        "lookup_ms": _timed_ms(lookup),
        "due_ms": _timed_ms(due),
        "due_returned": due_count,
    }
