"""Entry point: ``python -m bench.run [--quick]`` measures voicebot against the reference loop."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench import baseline, capacity, inflight, micro, ours
from bench.fakes import FakeProviders
from bench.mix import JobSpec, SpeedModel, bench_config, fake_table, make_mix
from bench.report import markdown, plot_capacity, plot_cdf, summary, targets
from bot.jobs.poller import ClockWatch

RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Profile:
    """Sizes of one run of the harness."""

    name: str
    jobs: int
    warmup: int
    spread: float
    durations: tuple[float, float]
    chars: tuple[int, int]
    speed: SpeedModel
    burst: int
    in_flight: int
    store_rows: int
    transcode_seconds: float
    cantonese: bool = True  # its 5 s minimum poll interval dominates a tiny run
    slack: float = 120.0  # how long a phase may wait past its expected end before giving up
    # Capacity sweep: closed loops at once. The reference sleeps ~5 s per job, so it needs about
    # 2,048 loops before its own CPU, not its sleeps, bounds it.
    clients: tuple[int, ...] = (16, 128, 512, 1024, 2048)
    window: float = 20.0  # seconds each level of the sweep runs (the reference sleeps 3-5 s)
    resume_large: int = 0  # a second restart with this many jobs in flight (0: none)


PROFILES = {
    "full": Profile(
        "full",
        60,
        16,
        60.0,
        (5.0, 60.0),
        (80, 800),
        SpeedModel(),
        1000,
        1000,
        100_000,
        60.0,
        resume_large=10_000,
    ),
    "quick": Profile(
        "quick",
        12,
        8,
        8.0,
        (4.0, 24.0),
        (60, 300),
        SpeedModel(),
        200,
        300,
        100_000,
        30.0,
        clients=(16, 256),
        window=10.0,
    ),
    "smoke": Profile(
        "smoke",
        3,
        0,
        0.0,
        (2.0, 4.0),
        (40, 80),
        SpeedModel(stt_base=0.3, stt_per_second=0.1, queue_chance=0.0),
        8,
        12,
        2_000,
        2.0,
        cantonese=False,
        slack=30.0,
        clients=(4,),
        window=6.0,
    ),
}


async def latency(
    fakes: FakeProviders, prof: Profile, work: Path, seed: int, url: str | None = None
) -> dict[str, Any]:
    """The same job mix through the bot and through the reference loop, side by side (the bot
    on SQLite, or on the PostgreSQL database at ``url``)."""
    warm, specs = _mixes(prof, seed)
    fakes.reset()
    fakes.configure(fake_table(warm + specs), 0.0)
    timeout = prof.spread + max(s.processing for s in specs) + prof.slack
    config = bench_config(work / "latency.sqlite3", fakes.nano_url, fakes.canto_url, url)
    async with ours.running_core(config) as (core, deliverer):
        schedule = type(core.worker.schedule).__name__
        if warm:
            await ours.run_jobs(core, deliverer, warm, timeout)
        skip = set(deliverer.deliveries)
        ours_jobs, base = await asyncio.gather(
            ours.run_jobs(core, deliverer, specs, timeout),
            baseline.run_jobs(fakes.nano_url, fakes.canto_url, specs),
        )
    runs = fakes.runs()
    # (route, latency, polls) per job, in spec order for both contenders.
    mine: list[tuple[str, float, int]] = []
    for spec, job in zip(specs, ours_jobs, strict=True):
        d = deliverer.deliveries.get(job.id)
        if d is None or d.job_id in skip or d.run_id not in runs or d.state != "completed":
            continue
        run = runs[d.run_id]
        mine.append((_route(spec), d.at - run.ready_at, run.polls))
    theirs: list[tuple[str, float, int]] = []
    for spec, r in zip(specs, base, strict=True):
        if r.done_at is not None and r.run_id in runs:
            run = runs[r.run_id]
            theirs.append((_route(spec), r.done_at - run.ready_at, run.polls))
    return {
        "schedule": schedule,
        "processing_s": sorted(round(s.processing, 2) for s in specs),
        "ours": _summarise(mine, len(specs)),
        "baseline": _summarise(theirs, len(specs)),
        "by_route": _by_route(specs, mine, theirs),
    }


def _mixes(prof: Profile, seed: int) -> tuple[list[JobSpec], list[JobSpec]]:
    """The warm-up jobs and the measured ones, with no audio or text shared between them."""
    used: set[str] = set()
    mixes = [
        make_mix(
            count,
            seed=mix_seed,
            spread=spread,
            durations=prof.durations,
            chars=prof.chars,
            model=prof.speed,
            used=used,
        )
        for count, mix_seed, spread in (
            (prof.warmup, seed + 1, prof.spread / 6),
            (prof.jobs, seed, prof.spread),
        )
    ]
    return mixes[0], mixes[1]


def _by_route(
    specs: list[JobSpec],
    mine: list[tuple[str, float, int]],
    theirs: list[tuple[str, float, int]],
) -> dict[str, Any]:
    """Both contenders' latency and polls for each provider and kind of job."""
    return {
        route: {
            "jobs": sum(1 for s in specs if _route(s) == route),
            "ours": _route_summary(mine, route),
            "baseline": _route_summary(theirs, route),
        }
        for route in sorted({_route(s) for s in specs})
    }


def _route(spec: JobSpec) -> str:
    return f"{spec.provider} {spec.kind.upper()}"


def _summarise(rows: list[tuple[str, float, int]], jobs: int) -> dict[str, Any]:
    return summary([r[1] for r in rows], [r[2] for r in rows], jobs)


def _route_summary(rows: list[tuple[str, float, int]], route: str) -> dict[str, float]:
    mine = [r for r in rows if r[0] == route]
    full = _summarise(mine, len(mine))
    return {
        "latency_p50": full["added_latency_s"]["p50"],
        "latency_p95": full["added_latency_s"]["p95"],
        "polls_mean": full["polls_per_job"]["mean"],
    }


async def measure(prof: Profile, work: Path, seed: int) -> dict[str, Any]:
    """Every measurement of one profile; the fakes run in their own process throughout."""
    result: dict[str, Any] = {}
    t0 = time.perf_counter()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        phases[name] = time.perf_counter() - t0 - sum(phases.values())
        # Progress on stderr: if a phase stalls, the last line says which one it was.
        print(f"bench: {name} done in {phases[name]:.1f} s", file=sys.stderr, flush=True)

    result["transcode"] = await asyncio.to_thread(micro.transcode, prof.transcode_seconds)
    lap("transcode")
    result["probe"] = micro.probe_note()
    lap("probe")
    result["store"] = await micro.store_queries(work / "store.sqlite3", prof.store_rows)
    lap("store")
    fakes = FakeProviders()
    fakes.start()
    try:
        await _against_fakes(fakes, prof, work, seed, result, lap)
    finally:
        fakes.stop()
    result["meta"] = _meta(prof, seed, result["latency"]["schedule"], t0, phases)
    result["targets"] = targets(result)
    return result


async def _against_fakes(
    fakes: FakeProviders,
    prof: Profile,
    work: Path,
    seed: int,
    result: dict[str, Any],
    lap: Callable[[str], None],
) -> None:
    """The phases that need the fake providers: latency (SQLite, then PostgreSQL when there is
    one), the capacity sweep, and the restarts; each phase's figures go into ``result``."""
    with capacity.postgres() as cluster:
        lap("start_fakes")
        result["latency"] = await latency(fakes, prof, work, seed)
        lap("latency")
        if cluster is not None:
            url = cluster.create_database()
            result["latency_postgres"] = await latency(fakes, prof, work, seed, url)
            lap("latency_postgres")
        result["capacity"] = await capacity.sweep(fakes, prof.clients, prof.window, work, cluster)
        lap("capacity")
    restart = inflight.Restart(fakes, work, slack=prof.slack, cantonese=prof.cantonese)
    result["inflight"], result["resume"] = restart.run(prof.in_flight)
    lap("restart")
    if prof.resume_large:
        _, result["resume_large"] = restart.run(prof.resume_large)
        lap("restart_large")


def _meta(
    prof: Profile, seed: int, schedule: str, t0: float, phases: dict[str, float]
) -> dict[str, Any]:
    """What was run, where and when, and how long each phase took."""
    return {
        "mode": prof.name,
        "jobs": prof.jobs,
        "warmup_jobs": prof.warmup,
        "mix": "½ NanoGPT Elevenlabs-STT, ¼ cantonese.ai, ¼ NanoGPT Elevenlabs TTS"
        if prof.cantonese
        else "¾ NanoGPT Elevenlabs-STT, ¼ NanoGPT Elevenlabs TTS",
        "schedule": schedule,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        "harness_seconds": time.perf_counter() - t0,
        "phase_seconds": phases,
        "speed_model": {k: getattr(prof.speed, k) for k in prof.speed.__dataclass_fields__},
    }


async def _watched(work: Coroutine[Any, Any, T], seconds: float | None) -> T:
    """Run ``work``; shortly before the watchdog fires, print where every task is waiting."""

    watch = ClockWatch(time.time, time.monotonic, tolerance=0.0)  # any move is worth reporting

    async def dump() -> None:
        await asyncio.sleep(max(0.0, seconds - 5) if seconds else math.inf)
        step = watch.step()
        print(
            f"bench: watchdog: still running (wall clock moved {step:+.3f} s against the "
            "monotonic clock); tasks:",
            file=sys.stderr,
        )
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.print_stack(limit=8, file=sys.stderr)
        sys.stderr.flush()

    watcher = asyncio.create_task(dump())
    try:
        return await work
    finally:
        watcher.cancel()


def main(argv: list[str] | None = None) -> int:
    """Run the harness, write ``latest.json`` and the CDF PNG, print the markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--watchdog",
        type=float,
        metavar="SECONDS",
        help="if still running after SECONDS, print every thread's stack and exit",
    )
    args = parser.parse_args(argv)
    if args.watchdog:  # threads' stacks (even if the event loop is blocked), then exit
        faulthandler.dump_traceback_later(args.watchdog, exit=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    prof = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
        result = asyncio.run(_watched(measure(prof, Path(tmp), args.seed), args.watchdog))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    series = {
        "voicebot": result["latency"]["ours"]["samples"],
        "reference loop (5 s / 3 s)": result["latency"]["baseline"]["samples"],
    }
    if not plot_cdf(args.out / "latency_cdf.png", series) or not plot_capacity(
        args.out / "capacity.png", result["capacity"]
    ):
        print("(no PNG: install the bench extra, pip install -e '.[bench]')", file=sys.stderr)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
