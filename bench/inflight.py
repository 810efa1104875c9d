"""Peak memory with many in-flight jobs, and the time to resume them after a restart.

Both run in fresh child processes (spawn), so the numbers are the bot's alone: the fakes live in
their own process, and a restart really is a new interpreter reopening the same database.
``python -m bench.inflight [--jobs 1000 10000] [--repeat N]`` runs this phase of
``python -m bench.run`` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fakes import FakeProviders
from bench.mix import JobSpec, SpeedModel, bench_config, make_mix
from bench.ours import create, running_core

HOLD = 1e6  # processing seconds for runs that must stay in flight


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _count(db: Path, where: str) -> int:
    with sqlite3.connect(db, timeout=5) as conn:
        row = conn.execute(f"SELECT count(*) FROM jobs WHERE {where}").fetchone()
    return int(row[0])


async def _load(
    db: Path, urls: tuple[str, str], specs: list[JobSpec], wait: float
) -> dict[str, Any]:
    config = bench_config(db, *urls)
    rss_idle = _status_kb("VmRSS")
    async with running_core(config) as (core, _deliverer):
        start = time.perf_counter()
        await asyncio.gather(*(create(core, s) for s in specs))
        created = time.perf_counter() - start
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _count(db, "state = 'submitted' AND poll_count >= 1") >= len(specs):
                break
            await asyncio.sleep(0.2)
        in_flight = _count(db, "state = 'submitted'")
        rss_loaded = _status_kb("VmRSS")
    return {
        "jobs": len(specs),
        "in_flight": in_flight,
        "create_seconds": created,
        "rss_idle_mb": rss_idle / 1024,
        "rss_loaded_mb": rss_loaded / 1024,
        "peak_rss_mb": _status_kb("VmHWM") / 1024,
    }


async def _resume(db: Path, urls: tuple[str, str], count: int, wait: float) -> dict[str, Any]:
    config = bench_config(db, *urls)
    start, cpu0 = time.monotonic(), time.process_time()
    async with running_core(config) as (core, deliverer):
        opened = time.monotonic()
        done = await deliverer.wait(count, wait)
        cpu, audio = time.process_time() - cpu0, core.audio.cpu_seconds
        last = max((d.at for d in deliverer.deliveries.values()), default=time.monotonic())
        first = min((d.at for d in deliverer.deliveries.values()), default=last)
    return {
        "cpu_seconds": cpu,
        "audio_cpu_seconds": audio,
        "jobs": count,
        "delivered": len(deliverer.deliveries),
        "all_delivered": done,
        "started_at": start,
        "open_seconds": opened - start,
        "first_delivery_seconds": first - start,
        "all_delivered_seconds": last - start,
        "peak_rss_mb": _status_kb("VmHWM") / 1024,
    }


def _child(conn: Any, what: str, args: tuple[Any, ...]) -> None:
    try:
        result = asyncio.run(_load(*args) if what == "load" else _resume(*args))
    except BaseException as exc:  # report, don't hang the parent
        result = {"error": repr(exc)}
    conn.send(result)
    conn.close()


def in_child(what: str, *args: Any, wait: float) -> dict[str, Any]:
    """Run ``_load`` or ``_resume`` in a fresh interpreter; add ``spawned_at`` (monotonic).

    ``wait`` bounds how long the child waits for its jobs; the parent allows a minute more for
    the interpreter to start and the core to open and close.
    """
    timeout = wait + 60
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, what, (*args, wait)), name=f"bench-{what}")
    spawned = time.monotonic()
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise RuntimeError(f"{what} child timed out")
        result: dict[str, Any] = parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    result["spawned_at"] = spawned
    return result


def simulate_downtime(db: Path) -> int:
    """Make every in-flight job overdue, as after the bot was down past their next poll."""
    with sqlite3.connect(db, timeout=5) as conn:
        cur = conn.execute(
            "UPDATE jobs SET next_poll_at = ? WHERE state = 'submitted'", (time.time(),)
        )
        return cur.rowcount


def burst_specs(count: int, cantonese: bool = True) -> list[JobSpec]:
    """``count`` short jobs, a quarter of each route (a quarter TTS: voice clips to encode)."""
    mix = make_mix(
        4,
        seed=99,
        spread=0.0,
        durations=(2.0, 2.5),
        chars=(100, 120),
        model=SpeedModel(),
        used=set(),
        cantonese=cantonese,
    )
    return [
        JobSpec(i, m.kind, m.provider, m.size, 0.0, 0.0, m.audio, m.text)
        for i in range(count)
        for m in [mix[i % 4]]
    ]


@dataclass(frozen=True, slots=True)
class Restart:
    """Jobs left in flight by one process and resumed by the next, against running fakes."""

    fakes: FakeProviders
    work: Path
    slack: float = 120.0
    cantonese: bool = True

    def run(self, count: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Peak RSS with ``count`` jobs in flight (child 1), then a fresh process resuming them
        (child 2)."""
        db = self.work / f"inflight-{count}-{time.monotonic_ns()}.sqlite3"
        urls = (self.fakes.nano_url, self.fakes.canto_url)
        specs = burst_specs(count, self.cantonese)
        self.fakes.reset()
        self.fakes.configure({}, HOLD)
        wait = self.slack + count / 100  # creating 10,000 jobs alone takes a while
        load = in_child("load", db, urls, specs, wait=wait)
        self.fakes.finish_runs()
        overdue = simulate_downtime(db)
        resumed = in_child("resume", db, urls, len(specs), wait=wait)
        if "started_at" in resumed:
            resumed["since_spawn_seconds"] = (
                resumed["started_at"] + resumed["all_delivered_seconds"] - resumed["spawned_at"]
            )
        resumed["overdue_at_restart"] = overdue
        return load, resumed


def main(argv: list[str] | None = None) -> int:
    """Resume only: each size ``--repeat`` times, one line per restart, JSON at the end."""
    parser = argparse.ArgumentParser(prog="python -m bench.inflight", description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-cantonese", dest="cantonese", action="store_false")
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    fakes = FakeProviders()
    fakes.start()
    try:
        with tempfile.TemporaryDirectory(prefix="voicebot-inflight-") as tmp:
            restart = Restart(fakes, Path(tmp), cantonese=args.cantonese)
            for _ in range(args.repeat):
                for count in args.jobs:
                    _, resumed = restart.run(count)
                    runs.append(resumed)
                    print(_line(resumed), file=sys.stderr, flush=True)
    finally:
        fakes.stop()
    print(json.dumps(runs, indent=2))
    return 0


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"resume failed: {r['error']}"
    return (
        f"resume {r['jobs']:,} jobs: {r['all_delivered_seconds']:.2f} s "
        f"(first reply {r['first_delivery_seconds']:.2f} s, open {r['open_seconds']:.2f} s), "
        f"CPU {r['cpu_seconds']:.2f} s, audio threads {r['audio_cpu_seconds']:.2f} s, "
        f"delivered {r['delivered']:,}"
    )


if __name__ == "__main__":
    sys.exit(main())
