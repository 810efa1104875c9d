"""Storage benchmark: ``python -m bench.storage [--jobs N] [--rows N]``.

1. Throughput of 1, 2 and 3 ``voicebot run`` processes on one PostgreSQL database, and of one
   process on SQLite, with zero-latency fakes (fake Telegram, NanoGPT's synchronous models): jobs
   answered per second, as a ratio to one PostgreSQL process.
2. /usage over 30 days at ``--rows`` jobs, from the daily rollup against the direct aggregate of
   the jobs table (what it was before), and the stall: how long a job step's claim waits while
   /usage runs on the same store.
3. A /metrics scrape's job counts at ``--rows`` jobs, from the trigger-kept ``job_counts`` table
   against the GROUP BY over every job (what it was before), and how long a job step's claim
   waits meanwhile (on SQLite the query runs on the event loop, so it stalls every step); and
   what keeping the counts costs a job's steps (CPU per job with and without the triggers).

Needs the PostgreSQL binaries (a throwaway cluster in a temp dir, as in the tests). Figures are
printed and written to ``bench/results/storage.json`` (``--queries-only``: 2 and 3 alone, to
``bench/results/storage-queries.json``).
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
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import yaml

from bot.jobs.poller import Reach
from bot.jobs.steps import Completion
from bot.model.job import JobKind, NewJob
from bot.model.speech import Origin
from bot.storage import open_store
from bot.storage.jobs import SqlJobStore
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.fakes.telegram import FakeTelegram
from testkit.pgcluster import PgCluster, bindir
from testkit.stress import final_replies
from testkit.support import config_dict

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


async def _start(config: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "offline"), str(ROOT)])
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.cli", "--config", str(config), "run",
            cwd=ROOT, env=env, stdout=sink, stderr=sink,
        )  # fmt: skip


def _answered(tg: FakeTelegram, triggers: list[tuple[int, int]]) -> int:
    """How many triggers have their final reply (a voice, or the transcript edited in)."""
    finals = final_replies(tg)
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
            rows_out = await store.usage.usage(since)
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
    return await _claim_wait(store, store.usage.usage(since))


async def _claim_wait(store: SqlJobStore, query: Awaitable[object]) -> float:
    """Milliseconds from a job step's claim being issued, just after ``query`` started, to its
    answer. Both are scheduled before either runs, as a scrape and a due step are on a live
    loop: on SQLite the query runs on the event loop, so the claim waits for all of it."""
    t0 = time.perf_counter()
    running = asyncio.ensure_future(query)
    claim = asyncio.ensure_future(store.claims.claim(time.time(), Reach(["telegram"]), 10, 15.0))
    await claim
    waited = 1000 * (time.perf_counter() - t0)
    await running
    return waited


_GROUP_BY = "SELECT state, kind, provider, COUNT(*) FROM jobs GROUP BY state, kind, provider"


async def counts_and_stall(target: str, rows: int) -> dict[str, Any]:
    """A /metrics scrape's job counts (trigger-kept table vs the old GROUP BY over every job),
    and a claim's wait while each runs."""
    store = await open_store(target, pool_size=4)
    try:
        table, direct, wait_table, wait_direct = [], [], [], []
        for _ in range(5):
            t0 = time.perf_counter()
            counts = await store.usage.job_counts()
            table.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            old = await store.db.fetch(_GROUP_BY)
            direct.append(1000 * (time.perf_counter() - t0))
            wait_table.append(await _claim_wait(store, store.usage.job_counts()))
            wait_direct.append(await _claim_wait(store, store.db.fetch(_GROUP_BY)))
        same = sorted(counts) == sorted((r[0], r[1], r[2], int(r[3])) for r in old)
        return {
            "rows": rows,
            "counts_equal_group_by": same,
            "scrape_counts_table_ms": _ms(table),
            "scrape_group_by_ms": _ms(direct),
            "claim_wait_during_counts_table_ms": _ms(wait_table),
            "claim_wait_during_group_by_ms": _ms(wait_direct),
        }
    finally:
        await store.close()


_COUNT_TRIGGERS = {
    "sqlite": ("job_counts_on_insert", "job_counts_on_move", "job_counts_on_delete"),
    "postgres": (
        "jobs_count_added ON jobs",
        "jobs_count_removed ON jobs",
        "jobs_count_moved ON jobs",
    ),
}


async def step_cost(targets: list[str], jobs: int = 1000, rounds: int = 9) -> dict[str, Any]:
    """Time per job lifecycle (create, claim, submit, complete: four statements, three of them
    moving a count) with the ``job_counts`` triggers and with them dropped, in alternating
    rounds on fresh databases (``targets``: two per round); the best round of each. SQLite: this
    process's CPU (its statements run here); PostgreSQL: wall time of the four round trips."""
    origin = Origin("telegram", "1", "2")
    new = NewJob(JobKind.STT, origin, "nanogpt", "m", {}, deadline_at=1e12)

    async def one_round(target: str, triggers: bool) -> float:
        store = await open_store(target, pool_size=2)
        clock = time.process_time if store.db.dialect.name == "sqlite" else time.perf_counter
        try:
            if not triggers:
                for name in _COUNT_TRIGGERS[store.db.dialect.name]:
                    await store.db.execute(f"DROP TRIGGER {name}")
            started = clock()
            for _ in range(jobs):
                job = await store.create(new, now=1.0)
                await store.claims.claim(2.0, Reach(["telegram"]), 1, 30.0)
                await store.steps.begin_submit(job.id, 2.0)
                await store.steps.complete(job.id, Completion({"text": "x"}), 3.0)
            return 1e6 * (clock() - started) / jobs
        finally:
            await store.close()

    best = {True: float("inf"), False: float("inf")}
    for i in range(rounds):
        for n, triggers in enumerate((False, True)):
            best[triggers] = min(best[triggers], await one_round(targets[2 * i + n], triggers))
    return {
        "jobs_per_round": jobs,
        "us_per_job_without_counts": best[False],
        "us_per_job_with_counts": best[True],
        "ratio": best[True] / best[False],
    }


async def main_async(jobs: int, rows: int, throughput_runs: bool = True) -> dict[str, Any]:
    folder = bindir()
    if folder is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found")
    cluster = PgCluster(folder)
    cluster.init()
    cluster.start()
    result: dict[str, Any] = {"cpus": os.cpu_count(), "jobs": jobs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if throughput_runs:
                result.update(await _throughputs(Path(tmp), cluster, jobs))
            path = Path(tmp) / "usage.sqlite3"
            await _fill_sqlite(path, rows)
            result["usage_sqlite"] = await usage_and_stall(str(path), rows)
            print("usage sqlite", result["usage_sqlite"], flush=True)
            result["counts_sqlite"] = await counts_and_stall(str(path), rows)
            print("counts sqlite", result["counts_sqlite"], flush=True)
            files = [str(Path(tmp) / f"steps{i}.sqlite3") for i in range(18)]
            result["counts_step_cost_sqlite"] = await step_cost(files)
            print("counts step cost sqlite", result["counts_step_cost_sqlite"], flush=True)
            url = cluster.create_database()
            await _fill_postgres(url, rows)
            result["usage_postgres"] = await usage_and_stall(url, rows)
            print("usage postgres", result["usage_postgres"], flush=True)
            result["counts_postgres"] = await counts_and_stall(url, rows)
            print("counts postgres", result["counts_postgres"], flush=True)
            urls = [cluster.create_database() for _ in range(10)]
            result["counts_step_cost_postgres"] = await step_cost(urls, jobs=300, rounds=5)
            print("counts step cost postgres", result["counts_step_cost_postgres"], flush=True)
    finally:
        cluster.remove()
    return result


async def _throughputs(tmp: Path, cluster: PgCluster, jobs: int) -> dict[str, Any]:
    runs = []
    for n in (1, 2, 3):
        work = tmp / f"pg{n}"
        work.mkdir()
        runs.append(await throughput(work, cluster.create_database(), n, jobs))
        print("postgres", runs[-1], flush=True)
    work = tmp / "sqlite"
    work.mkdir()
    lite = await throughput(work, None, 1, jobs)
    print("sqlite", lite, flush=True)
    base = runs[0]["jobs_per_s"]
    return {
        "postgres": [{**r, "ratio": r["jobs_per_s"] / base} for r in runs],
        "sqlite_1": {**lite, "ratio_to_postgres_1": lite["jobs_per_s"] / base},
    }


def main() -> None:
    """Run the storage benchmark and write ``bench/results/storage.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--queries-only",
        action="store_true",
        help="skip the throughput runs (then the figures go to storage-queries.json)",
    )
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs, args.rows, not args.queries_only))
    RESULTS.mkdir(exist_ok=True)
    name = "storage-queries.json" if args.queries_only else "storage.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
