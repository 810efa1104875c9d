"""Capacity: jobs/s and CPU per job, the bot (SQLite, PostgreSQL) against the reference loop.

Zero-latency fakes and the NanoGPT-only mix (¾ Elevenlabs-STT, ¼ Elevenlabs TTS), so provider
floors (cantonese.ai's 5 s interval) bound nothing: what is left is the bot's own cost. Each level
of the sweep runs ``clients`` closed loops: a client submits a job, waits for its reply and
submits the next; after a warm-up, jobs finished inside a fixed window count. The reference
loop sleeps its documented 5 s / 3 s before each status check, so it needs thousands of clients
to be busy; the bot's capacity is where its curve peaks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import ours
from bench.baseline import ReferenceClient
from bench.fakes import FakeProviders
from bench.mix import JobSpec, SpeedModel, bench_config, make_mix
from testkit.pgcluster import PgCluster, bindir


def nano_specs() -> list[JobSpec]:
    """The four job shapes the clients cycle through (three STT, one TTS)."""
    return make_mix(
        4,
        seed=99,
        spread=0.0,
        durations=(2.0, 2.5),
        chars=(100, 120),
        model=SpeedModel(),
        used=set(),
        cantonese=False,
    )


def _spec(shapes: list[JobSpec], index: int) -> JobSpec:
    m = shapes[index % len(shapes)]
    return JobSpec(index, m.kind, m.provider, m.size, 0.0, 0.0, m.audio, m.text)


def warmup_for(window: float) -> float:
    """Seconds a level runs before anything is counted: long enough for the reference's 3-5 s
    sleeps to spread out after the staggered start."""
    return window / 2


async def closed_loop(
    run_one: Callable[[int], Awaitable[bool]],
    clients: int,
    window: float,
    audio_cpu: Callable[[], float] | None = None,
) -> dict[str, float]:
    """``clients`` loops running jobs back to back; throughput and CPU over ``window`` seconds
    of steady state.

    The loops start spread over the first half of a warm-up (:func:`warmup_for`), so they
    don't move in lockstep (the reference's jobs all sleep the same 3-5 s); only then are jobs
    and CPU counted. Jobs count when they finish inside the window, and the CPU spent in it is
    shared among them: in steady state the work of jobs still running at either edge evens out.
    CPU is this process's (the fakes run in their own); ``audio_cpu`` (the bot's audio threads'
    CPU seconds so far) splits out the audio work.
    """
    finished = started = 0
    warmup = warmup_for(window)
    begin = time.monotonic() + warmup
    end = begin + window

    async def client(delay: float) -> None:
        nonlocal finished, started
        await asyncio.sleep(delay)
        while time.monotonic() < end:
            started += 1
            ok = await run_one(started)
            if ok and begin <= time.monotonic() <= end:
                finished += 1

    tasks = [asyncio.create_task(client(warmup / 2 * i / clients)) for i in range(clients)]
    wall, cpu, audio = await _window(begin, end, audio_cpu, tasks)
    return {
        "clients": clients,
        "jobs": finished,
        "seconds": wall,
        "jobs_per_s": finished / wall,
        "cpu_ms_per_job": 1000 * cpu / max(1, finished),
        "audio_cpu_ms_per_job": 1000 * audio / max(1, finished),
    }


async def _window(
    begin: float,
    end: float,
    audio_cpu: Callable[[], float] | None,
    loops: Sequence[asyncio.Task[None]],
) -> tuple[float, float, float]:
    """Wait out ``begin`` to ``end`` (monotonic), then stop the ``loops``: the wall seconds,
    process CPU and audio CPU of the window."""
    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    audio0 = audio_cpu() if audio_cpu else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    audio = (audio_cpu() - audio0) if audio_cpu else 0.0
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    return wall, cpu, audio


async def _ours(config_for: Callable[[int], Any], clients: int, window: float) -> dict[str, float]:
    shapes = nano_specs()
    async with ours.running_core(config_for(clients)) as (core, deliverer):

        async def one(index: int) -> bool:
            job = await ours.create(core, _spec(shapes, index))
            return (await deliverer.delivered(job.id)).state == "completed"

        return await closed_loop(one, clients, window, lambda: core.audio.cpu_seconds)


async def _reference(fakes: FakeProviders, clients: int, window: float) -> dict[str, float]:
    shapes = nano_specs()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = ReferenceClient(session, fakes.nano_url, fakes.canto_url)

        async def one(index: int) -> bool:
            return (await client.run(_spec(shapes, index))).done_at is not None

        return await closed_loop(one, clients, window)


@contextlib.contextmanager
def postgres() -> Iterator[PgCluster | None]:
    """A throwaway PostgreSQL cluster (as in the tests), or None without its binaries."""
    folder = bindir()
    if folder is None:
        yield None
        return
    cluster = PgCluster(folder)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


CONTENDERS = ("reference", "sqlite", "postgres")


async def sweep(
    fakes: FakeProviders,
    levels: tuple[int, ...],
    window: float,
    work: Path,
    cluster: PgCluster | None,
    only: tuple[str, ...] = CONTENDERS,
) -> dict[str, Any]:
    """Every level for the reference loop, the bot on SQLite and (with ``cluster``) the bot on
    PostgreSQL, one after the other (``only``: those contenders alone)."""
    fakes.reset()
    fakes.configure({}, 0.0)
    rows: list[dict[str, Any]] = []
    for clients in levels:
        row: dict[str, Any] = {"clients": clients}
        if "reference" in only:
            row["reference"] = await _reference(fakes, clients, window)
        if "sqlite" in only:
            row["sqlite"] = await _ours(
                lambda n: bench_config(
                    work / f"capacity-{n}.sqlite3", fakes.nano_url, fakes.canto_url
                ),
                clients,
                window,
            )
        if cluster is not None and "postgres" in only:
            row["postgres"] = await _ours(
                lambda n: bench_config(
                    work / "unused", fakes.nano_url, fakes.canto_url, cluster.create_database()
                ),
                clients,
                window,
            )
        rows.append(row)
    return {
        "window_s": window,
        "warmup_s": warmup_for(window),
        "levels": rows,
        "capacity": _capacity(rows),
    }


def _capacity(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each contender's best jobs/s over the sweep, and its CPU per job at that level."""
    best: dict[str, Any] = {}
    for name in CONTENDERS:
        runs = [r[name] for r in rows if name in r]
        if runs:
            top = max(runs, key=lambda r: r["jobs_per_s"])
            best[name] = {
                "jobs_per_s": top["jobs_per_s"],
                "clients": top["clients"],
                "cpu_ms_per_job": top["cpu_ms_per_job"],
                "audio_cpu_ms_per_job": top["audio_cpu_ms_per_job"],
            }
    return best


async def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    fakes = FakeProviders()
    fakes.start()
    try:
        with postgres() if "postgres" in args.only else contextlib.nullcontext() as cluster:
            if cluster is not None:  # to look at the server meanwhile (psql, pg_stat_activity)
                print(f"capacity: PostgreSQL at {cluster.url()}", file=sys.stderr, flush=True)
            return await sweep(
                fakes, tuple(args.clients), args.window, work, cluster, tuple(args.only)
            )
    finally:
        fakes.stop()


def main(argv: list[str] | None = None) -> int:
    """Only the capacity phase, at chosen levels and for chosen contenders (e.g. to profile the
    bot at one level: ``python -m bench.capacity --only sqlite --clients 2048``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=main.__doc__)
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--clients", nargs="+", type=int, default=[2048])
    parser.add_argument("--window", type=float, default=20.0, help="seconds counted per level")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="voicebot-capacity-") as tmp:
        result = asyncio.run(_run(args, Path(tmp)))
    for row in result["levels"]:
        for name in CONTENDERS:
            if name in row:
                r = row[name]
                audio = r["audio_cpu_ms_per_job"]
                print(
                    f"{row['clients']:>5} {name:<9} {r['jobs_per_s']:7.1f} jobs/s "
                    f"{r['cpu_ms_per_job']:6.2f} ms/job (audio {audio:.2f}, "
                    f"rest {r['cpu_ms_per_job'] - audio:.2f})"
                )
    print(json.dumps(result["capacity"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
