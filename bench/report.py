"""Turns raw measurements into statistics, target verdicts, a markdown table and a CDF plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(latencies: Sequence[float], polls: Sequence[int], jobs: int) -> dict[str, Any]:
    """Polls per job and added latency (seconds) of one contender."""
    return {
        "jobs": jobs,
        "completed": len(latencies),
        "polls_per_job": {
            "median": statistics.median(polls) if polls else math.nan,
            "mean": statistics.fmean(polls) if polls else math.nan,
            "p95": percentile(polls, 95),
            "total": sum(polls),
        },
        "added_latency_s": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "mean": statistics.fmean(latencies) if latencies else math.nan,
        },
        "samples": sorted(round(x, 4) for x in latencies),
    }


def _verdict(name: str, value: float, target: float, *, upper: bool, unit: str) -> dict[str, Any]:
    met = value <= target if upper else value >= target
    if math.isnan(value):
        met = False
    margin = (value - target) if upper else (target - value)
    return {
        "name": name,
        "value": value,
        "target": f"{'≤' if upper else '≥'} {target:g} {unit}".strip(),
        "met": met,
        "miss_by": 0.0 if met else margin,
    }


def _ratio_of(ours: float, base: float) -> float:
    return ours / base if base and not math.isnan(base) else math.nan


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, each with the measured value and whether it is met. The ratios are to
    the reference loop in the same run (the bot on SQLite, the default)."""
    goals = _ratio_goals(result) + _absolute_goals(result)
    return [
        _verdict(name, value, target, upper=upper, unit=unit)
        for name, value, target, upper, unit in goals
    ]


_Goal = tuple[str, float, float, bool, str]
"""(name, measured, target, whether the target is an upper bound, unit)"""


def _ratio_goals(result: dict[str, Any]) -> list[_Goal]:
    """The goals measured against the reference loop: CPU, capacity, polls, latency."""
    ours, base = result["latency"]["ours"], result["latency"]["baseline"]
    cap = result["capacity"]["capacity"]
    top = result["capacity"]["levels"][-1]  # the most clients: both contenders busy
    cpu = _ratio_of(top["sqlite"]["cpu_ms_per_job"], top["reference"]["cpu_ms_per_job"])
    jobs = _ratio_of(cap["sqlite"]["jobs_per_s"], cap["reference"]["jobs_per_s"])
    polls = _ratio_of(ours["polls_per_job"]["mean"], base["polls_per_job"]["mean"])
    goals: list[_Goal] = [
        ("CPU per job, ratio (most clients)", cpu, 1.0, True, "×"),
        ("capacity, ratio (best level each)", jobs, 1.3, False, "×"),
        ("polls per job (mean), ratio", polls, 0.8, True, "×"),
    ]
    for q, goal in (("p50", 0.5), ("p95", 0.7)):
        value = _ratio_of(ours["added_latency_s"][q], base["added_latency_s"][q])
        goals.append((f"added latency {q}, ratio", value, goal, True, "×"))
    return goals


def _absolute_goals(result: dict[str, Any]) -> list[_Goal]:
    """The goals with a fixed target: transcoding, probing, resuming, queries, memory."""
    resume = result["resume"]
    goals: list[_Goal] = [
        (
            "transcode 60 s MP3, one core",
            result["transcode"]["x_realtime"],
            300,
            False,
            "× realtime",
        ),
        ("probe a 2 s voice note", result["probe"]["cpu_ms"], 0.2, True, "ms CPU"),
        (
            f"resume {resume['jobs']:,} in-flight jobs",
            resume["all_delivered_seconds"],
            1,
            True,
            "s",
        ),
    ]
    if "resume_large" in result:
        seconds = result["resume_large"]["all_delivered_seconds"]
        goals.append(("resume 10,000 in-flight jobs", seconds, 10, True, "s"))
    goals += [
        ("/status lookup p50", result["store"]["lookup_ms"]["p50"], 2, True, "ms"),
        ("due query p50", result["store"]["due_ms"]["p50"], 5, True, "ms"),
        ("peak RSS", result["inflight"]["peak_rss_mb"], 150, True, "MB"),
    ]
    return goals


def _fmt(value: float, digits: int = 2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(ours: float, base: float) -> str:
    if not base or math.isnan(base) or math.isnan(ours):
        return "—"
    return f"{ours / base:.2f}×"


def _latency_rows(result: dict[str, Any]) -> list[str]:
    base = result["latency"]["baseline"]
    contenders = [("SQLite", result["latency"]["ours"])]
    if "latency_postgres" in result:
        contenders.append(("PostgreSQL", result["latency_postgres"]["ours"]))
    head = " | ".join(f"voicebot {n} | ratio" for n, _ in contenders)
    lines = [f"| Metric | reference | {head} |", "|---|---:|" + "---:|---:|" * len(contenders)]
    metrics = [("Polls per job (mean)", "polls_per_job", "mean")]
    metrics += [(f"Added latency {q} (s)", "added_latency_s", q) for q in ("p50", "p95", "p99")]
    for name, group, key in metrics:
        b = base[group][key]
        cells = " | ".join(
            f"{_fmt(o[group][key])} | {_ratio(o[group][key], b)}" for _, o in contenders
        )
        lines.append(f"| {name} | {_fmt(b)} | {cells} |")
    return lines


def _capacity_rows(result: dict[str, Any]) -> list[str]:
    sweep = result["capacity"]
    names = [n for n in ("sqlite", "postgres") if n in sweep["levels"][0]]
    head = " | ".join(f"{n} jobs/s (ratio) | {n} CPU ms/job (ratio)" for n in names)
    lines = [
        f"| Clients | reference jobs/s | reference CPU ms/job | {head} |",
        "|---:|---:|---:|" + "---:|---:|" * len(names),
    ]
    for row in sweep["levels"]:
        ref = row["reference"]
        cells = " | ".join(
            f"{_fmt(row[n]['jobs_per_s'], 1)} ({_ratio(row[n]['jobs_per_s'], ref['jobs_per_s'])})"
            f" | {_fmt(row[n]['cpu_ms_per_job'])} "
            f"({_ratio(row[n]['cpu_ms_per_job'], ref['cpu_ms_per_job'])})"
            for n in names
        )
        lines.append(
            f"| {row['clients']} | {_fmt(ref['jobs_per_s'], 1)} | "
            f"{_fmt(ref['cpu_ms_per_job'])} | {cells} |"
        )
    cap = sweep["capacity"]
    best = ", ".join(
        f"{n} {_fmt(cap[n]['jobs_per_s'], 1)} jobs/s at {cap[n]['clients']} clients"
        for n in ("reference", *names)
    )
    top = sweep["levels"][-1]
    ref_cpu = top["reference"]["cpu_ms_per_job"]
    audio = "; ".join(
        f"{n} {_fmt(top[n]['audio_cpu_ms_per_job'])} of {_fmt(top[n]['cpu_ms_per_job'])} ms, "
        f"the rest {_ratio(top[n]['cpu_ms_per_job'] - top[n]['audio_cpu_ms_per_job'], ref_cpu)} "
        "the reference's"
        for n in names
    )
    split = (
        f"Audio threads' CPU per job at {top['clients']} clients (voice-message clips; the "
        f"reference keeps the provider's MP3 and encodes nothing): {audio}."
    )
    return [*lines, "", f"Capacity (best level each): {best}.", "", split]


def markdown(result: dict[str, Any]) -> str:
    """bench/README.md's tables: latency mix, capacity sweep (ours / reference / ratio), goals."""
    meta = result["meta"]
    lines = [
        f"Run {meta['when']} ({meta['mode']}, {meta['cpus']} CPUs, schedule `{meta['schedule']}`).",
        "",
        f"**Latency mix** ({meta['jobs']} jobs: {meta['mix']}; bounded by provider floors):",
        "",
        *_latency_rows(result),
        "",
        f"**Capacity** (zero-latency fakes, {capacity_mix()}; closed loops, "
        f"{_fmt(result['capacity']['warmup_s'], 0)} s warm-up, then "
        f"{_fmt(result['capacity']['window_s'], 0)} s counted per level):",
        "",
        *_capacity_rows(result),
    ]
    lines += _route_rows(result["latency"].get("by_route", {}))
    lines += _resume_lines(result)
    lines += ["", "| Goal | Measured | Target | Met |", "|---|---:|---|:---:|"]
    for t in result["targets"]:
        lines.append(
            f"| {t['name']} | {_fmt(t['value'])} | {t['target']} | {'yes' if t['met'] else 'no'} |"
        )
    return "\n".join(lines)


def _route_rows(by_route: dict[str, Any]) -> list[str]:
    """Latency and polls per provider route, ours against the reference (none: no rows)."""
    if not by_route:
        return []
    lines = [
        "",
        "| Route (jobs) | p50 ours / ref (s) | p95 ours / ref (s) | Polls ours / ref |",
        "|---|---:|---:|---:|",
    ]
    for route, r in by_route.items():
        o, b = r["ours"], r["baseline"]
        lines.append(
            f"| {route} ({r['jobs']}) | {_fmt(o['latency_p50'])} / {_fmt(b['latency_p50'])} "
            f"| {_fmt(o['latency_p95'])} / {_fmt(b['latency_p95'])} "
            f"| {_fmt(o['polls_mean'])} / {_fmt(b['polls_mean'])} |"
        )
    return lines


def _resume_lines(result: dict[str, Any]) -> list[str]:
    """How long each restart took to deliver every job it found in flight."""
    resumes = [result[k] for k in ("resume", "resume_large") if k in result]
    if not resumes:
        return []
    told = "; ".join(
        f"{r['jobs']:,} jobs: {_fmt(r['all_delivered_seconds'])} s, "
        f"{_fmt(r['cpu_seconds'])} s of CPU, {_fmt(r['audio_cpu_seconds'])} s of it on the "
        "audio threads"
        for r in resumes
    )
    return ["", f"Resume after a restart (all polled, recorded and replied): {told}."]


def capacity_mix() -> str:
    """The capacity sweep's job mix, in words."""
    return "¾ NanoGPT Elevenlabs-STT, ¼ NanoGPT Elevenlabs TTS"


class _Canvas:
    """An 800×500 white PNG with a framed plot area, ticks, grid lines and a legend."""

    width, height, left, bottom, top, right = 800, 500, 70, 60, 40, 30

    def __init__(self, image: Any, draw: Any) -> None:
        self.image, self.draw = image, draw
        self.plot_w = self.width - self.left - self.right
        self.plot_h = self.height - self.top - self.bottom
        draw.rectangle(
            (self.left, self.top, self.width - self.right, self.height - self.bottom),
            outline="black",
        )

    def x_tick(self, x: float, label: str, shift: float) -> None:
        """A tick below the plot at ``x``, labelled ``shift`` pixels to its left."""
        base = self.height - self.bottom
        self.draw.line((x, base, x, base + 5), fill="black")
        self.draw.text((x - shift, base + 8), label, fill="black")

    def y_tick(self, y: float, label: str, shift: float) -> None:
        """A tick and a grid line at ``y``, labelled ``shift`` pixels left of the plot."""
        self.draw.line((self.left - 5, y, self.left, y), fill="black")
        self.draw.line((self.left, y, self.width - self.right, y), fill=(225, 225, 225))
        self.draw.text((self.left - shift, y - 6), label, fill="black")

    def titles(self, x_label: str, shift: float, title: str) -> None:
        """The x axis's label (centred less ``shift`` pixels) and the title above the plot."""
        self.draw.text((self.width // 2 - shift, self.height - 25), x_label, fill="black")
        self.draw.text((self.left, 12), title, fill="black")

    def legend(self, row: int, x: float, colour: tuple[int, int, int], label: str) -> None:
        """Legend entry ``row``: a short line in ``colour`` at ``x``, then ``label``."""
        y = self.top + 20 + 18 * row
        self.draw.line((x, y, x + 30, y), fill=colour, width=3)
        self.draw.text((x + 35, y - 6), label, fill="black")

    def save(self, path: Path) -> bool:
        """Write the PNG (its folder made as needed)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.image.save(path, "PNG")
        return True


def _canvas() -> _Canvas | None:
    """A fresh canvas, or None without Pillow (the ``bench`` extra)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return None
    image = Image.new("RGB", (_Canvas.width, _Canvas.height), "white")
    return _Canvas(image, ImageDraw.Draw(image))


def plot_capacity(path: Path, sweep: dict[str, Any]) -> bool:
    """Throughput against concurrent clients (log scale) per contender, as a PNG; False
    without Pillow."""
    c = _canvas()
    if c is None:
        return False
    levels = sweep["levels"]
    names = [n for n in ("reference", "sqlite", "postgres") if n in levels[0]]
    y_max = max(r[n]["jobs_per_s"] for r in levels for n in names) * 1.1 or 1.0
    x_lo, x_hi = math.log10(levels[0]["clients"]), math.log10(levels[-1]["clients"])
    span = (x_hi - x_lo) or 1.0

    def xy(clients: float, y: float) -> tuple[float, float]:
        x = c.left + c.plot_w * (math.log10(clients) - x_lo) / span
        return x, c.top + c.plot_h * (1 - y / y_max)

    for row in levels:
        c.x_tick(xy(row["clients"], 0)[0], str(row["clients"]), 8)
    for i in range(6):
        c.y_tick(xy(levels[0]["clients"], y_max * i / 5)[1], f"{y_max * i / 5:.0f}", 45)
    c.titles("concurrent clients (log scale)", 110, "Throughput (jobs/s), zero-latency fakes")
    colours = {"reference": (214, 39, 40), "sqlite": (31, 119, 180), "postgres": (44, 160, 44)}
    for n, name in enumerate(names):
        points = [xy(r["clients"], r[name]["jobs_per_s"]) for r in levels]
        if len(points) > 1:
            c.draw.line(points, fill=colours[name], width=2)
        for px, py in points:
            c.draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colours[name])
        label = "reference loop" if name == "reference" else f"voicebot ({name})"
        c.legend(n, c.left + 20, colours[name], label)
    return c.save(path)


def plot_cdf(path: Path, series: dict[str, Sequence[float]]) -> bool:
    """Draw the added-latency CDFs as a PNG with Pillow (the ``bench`` extra); False if absent."""
    c = _canvas()
    if c is None:
        return False
    values = [v for s in series.values() for v in s]
    x_max = max(1.0, math.ceil(max(values, default=1.0)))

    def xy(x: float, y: float) -> tuple[float, float]:
        return c.left + c.plot_w * min(x, x_max) / x_max, c.top + c.plot_h * (1 - y)

    for tick in range(0, int(x_max) + 1, max(1, math.ceil(x_max / 10))):
        c.x_tick(xy(tick, 0)[0], str(tick), 4)
    for i in range(0, 11, 2):
        c.y_tick(xy(0, i / 10)[1], f"{i / 10:.1f}", 30)
    c.titles("added latency: reply - provider done (s)", 120, "Added-latency CDF")
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44)]
    for n, (name, data) in enumerate(series.items()):
        ordered = sorted(data)
        colour = colours[n % len(colours)]
        points = [xy(0, 0)]
        for i, v in enumerate(ordered):
            points += [xy(v, i / len(ordered)), xy(v, (i + 1) / len(ordered))]
        if len(points) > 1:
            c.draw.line(points, fill=colour, width=2)
        c.legend(n, c.width - 220, colour, name)
    return c.save(path)
