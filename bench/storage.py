"""Storage benchmark: ``python -m bench.storage [--jobs N] [--rows N]``.

1. Throughput of 1, 2 and 3 ``voicebot run`` processes on one PostgreSQL database, and of one
   process on SQLite, with zero-latency fakes (fake Telegram, NanoGPT's synchronous models): jobs
   answered per second, as a ratio to one PostgreSQL process.
2. /usage over 30 days at ``--rows`` jobs, from the daily rollup against the direct aggregate of
   the jobs table (what it was before), and the stall: how long a job step's claim waits while
   /usage runs on the same store.

Needs the PostgreSQL binaries (a throwaway cluster in a temp dir, as in the tests). Figures are
printed and written to ``bench/results/storage.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bot.storage import open_store
from bot.storage.jobs import SqlJobStore
from tests.fakes.audio import make_tone
from tests.fakes.providers import FakeNanoGpt
from tests.fakes.telegram import FakeTelegram
from tests.pgcluster import PgCluster, bindir
from tests.support import config_dict
from tests.test_stress import _finals

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


async def _start(config: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "offline"), str(ROOT)])
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "run",
            cwd=ROOT, env=env, stdout=sink, stderr=sink,
        )  # fmt: skip


def _answered(tg: FakeTelegram, triggers: list[tuple[int, int]]) -> int:
    """How many triggers have their final reply (a voice, or the transcript edited in)."""
    finals = _finals(tg)
    return sum(1 for t in triggers if finals.get(t))


async def throughput(work: Path, url: str | None, processes: int, jobs: int) -> dict[str, Any]:
    """Seconds from injecting ``jobs`` (half voice notes, half /speak) to their last reply."""
    async with FakeTelegram() as tg, FakeNanoGpt() as nano:
        data = config_dict(
            work,
            nano_url=nano.url,
            storage={"url": url} if url else {},
            jobs={"concurrency": 16, "max_poll_interval": 1},
            telegram={"token": tg.token, "api_base": tg.api_base},
        )
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        procs = [await _start(config, work / f"bot{i}.log") for i in range(processes)]
        try:
            await tg.wait_held(timeout=60)
            await asyncio.sleep(2.0)  # every process up and idle
            notes = [make_tone(0.5, freq=200.0 + i) for i in range(jobs // 2)]
            start = time.perf_counter()
            triggers: list[tuple[int, int]] = []
            for i in range(jobs):
                chat = 1000 + i % 20
                if i % 2 == 0:
                    sent = tg.send_voice(chat, chat, notes[i // 2], duration=1)
                else:
                    sent = tg.send_text(chat, chat, f"/speak Benchmark line {i}.")
                triggers.append((chat, sent["message_id"]))
            while (done := _answered(tg, triggers)) < jobs:
                await asyncio.sleep(0.2)
                if time.perf_counter() - start > 600:
                    raise TimeoutError(f"{done} of {jobs} answered")
            seconds = time.perf_counter() - start
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await proc.wait()
    return {"processes": processes, "jobs": jobs, "seconds": seconds, "jobs_per_s": jobs / seconds}


async def _fill_sqlite(path: Path, rows: int) -> None:
    store = await open_store(path)
    await store.close()
    now = time.time()
    rng = random.Random(7)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO jobs (id, kind, platform, chat_id, user_id, provider, model, options, "
            "state, deadline_at, created_at, updated_at, input_duration, cost, completed_at, "
            "delivered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (_row(i, rows, now, rng) for i in range(rows)),
        )


def _row(i: int, rows: int, now: float, rng: random.Random) -> tuple[Any, ...]:
    created = now - 30 * 86400 * (1 - i / rows)
    user = rng.randrange(500)
    tts = i % 3 == 0
    options = '{"chars": 120}' if tts else "{}"
    kind = "tts" if tts else "stt"
    return (
        f"r{i:07d}", kind, "telegram", str(user % 200), str(user), "nanogpt", "m", options,
        "completed", created + 600, created, created + 5, None if tts else 12.5, 0.001,
        created + 5, created + 6,
    )  # fmt: skip


async def _fill_postgres(url: str, rows: int) -> None:
    import asyncpg

    store = await open_store(url)
    await store.close()
    now = time.time()
    rng = random.Random(7)
    conn = await asyncpg.connect(url)
    try:
        records = [_row(i, rows, now, rng) for i in range(rows)]
        columns = [
            "id", "kind", "platform", "chat_id", "user_id", "provider", "model", "options",
            "state", "deadline_at", "created_at", "updated_at", "input_duration", "cost",
            "completed_at", "delivered_at",
        ]  # fmt: skip
        await conn.copy_records_to_table("jobs", records=records, columns=columns)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "max": ordered[-1]}


async def usage_and_stall(target: str, rows: int) -> dict[str, Any]:
    """/usage over 30 days (rollup vs the old direct aggregate) and a claim's wait meanwhile."""
    store = await open_store(target, pool_size=4)
    try:
        since = time.time() - 30 * 86400
        rollup, direct, stall = [], [], []
        old_sql = (
            "SELECT platform, chat_id, user_id, COUNT(*), SUM(input_duration), SUM(cost) "
            "FROM jobs WHERE created_at >= ? GROUP BY platform, chat_id, user_id"
        )
        for _ in range(5):
            t0 = time.perf_counter()
            rows_out = await store.usage(since)
            rollup.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            await store.db.fetch(old_sql, (since,))
            direct.append(1000 * (time.perf_counter() - t0))
            stall.append(await _stall(store, since))
        return {
            "rows": rows,
            "usage_rows": len(rows_out),
            "usage_rollup_ms": _ms(rollup),
            "usage_direct_ms": _ms(direct),
            "claim_wait_during_usage_ms": _ms(stall),
        }
    finally:
        await store.close()


async def _stall(store: SqlJobStore, since: float) -> float:
    """Milliseconds a claim takes when issued while /usage is running."""
    usage = asyncio.create_task(store.usage(since))
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    await store.claim(time.time(), ["telegram"], 10, 15.0)
    waited = 1000 * (time.perf_counter() - t0)
    await usage
    return waited


async def main_async(jobs: int, rows: int) -> dict[str, Any]:
    folder = bindir()
    if folder is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found")
    cluster = PgCluster(folder)
    cluster.init()
    cluster.start()
    result: dict[str, Any] = {"cpus": os.cpu_count(), "jobs": jobs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = []
            for n in (1, 2, 3):
                work = Path(tmp) / f"pg{n}"
                work.mkdir()
                runs.append(await throughput(work, cluster.create_database(), n, jobs))
                print("postgres", runs[-1], flush=True)
            work = Path(tmp) / "sqlite"
            work.mkdir()
            lite = await throughput(work, None, 1, jobs)
            print("sqlite", lite, flush=True)
            base = runs[0]["jobs_per_s"]
            result["postgres"] = [{**r, "ratio": r["jobs_per_s"] / base} for r in runs]
            result["sqlite_1"] = {**lite, "ratio_to_postgres_1": lite["jobs_per_s"] / base}
            path = Path(tmp) / "usage.sqlite3"
            await _fill_sqlite(path, rows)
            result["usage_sqlite"] = await usage_and_stall(str(path), rows)
            print("usage sqlite", result["usage_sqlite"], flush=True)
            url = cluster.create_database()
            await _fill_postgres(url, rows)
            result["usage_postgres"] = await usage_and_stall(url, rows)
            print("usage postgres", result["usage_postgres"], flush=True)
    finally:
        cluster.remove()
    return result


def main() -> None:
    """Run the storage benchmark and write ``bench/results/storage.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs, args.rows))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "storage.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
