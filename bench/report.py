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


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    ours = result["latency"]["ours"]
    thr = result["throughput"]["ours"]
    return [
        _verdict("polls per job (median)", ours["polls_per_job"]["median"], 2, upper=True, unit=""),
        _verdict("added latency p50", ours["added_latency_s"]["p50"], 1, upper=True, unit="s"),
        _verdict("added latency p95", ours["added_latency_s"]["p95"], 3, upper=True, unit="s"),
        _verdict("throughput", thr["jobs_per_s"], 100, upper=False, unit="jobs/s"),
        _verdict("bot CPU per job", thr["cpu_ms_per_job"], 5, upper=True, unit="ms"),
        _verdict("transcode speed", result["transcode"]["x_realtime"], 200, upper=False, unit="×"),
        _verdict(
            "/status lookup p50", result["store"]["lookup_ms"]["p50"], 2, upper=True, unit="ms"
        ),
        _verdict("due query p50", result["store"]["due_ms"]["p50"], 5, upper=True, unit="ms"),
        _verdict(
            "resume in-flight jobs",
            result["resume"]["all_delivered_seconds"],
            2,
            upper=True,
            unit="s",
        ),
        _verdict("peak RSS", result["inflight"]["peak_rss_mb"], 150, upper=True, unit="MB"),
    ]


def _fmt(value: float, digits: int = 2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(ours: float, base: float) -> str:
    if not base or math.isnan(base) or math.isnan(ours):
        return "—"
    return f"{ours / base:.2f}×"


def markdown(result: dict[str, Any]) -> str:
    """The README table: ours vs the reference loop, ratios, then the absolute targets."""
    ours, base = result["latency"]["ours"], result["latency"]["baseline"]
    to, tb = result["throughput"]["ours"], result["throughput"]["baseline"]
    rows = [
        (
            "Polls per job (median)",
            ours["polls_per_job"]["median"],
            base["polls_per_job"]["median"],
            1,
        ),
        ("Polls per job (mean)", ours["polls_per_job"]["mean"], base["polls_per_job"]["mean"], 2),
    ]
    for q in ("p50", "p95", "p99"):
        rows.append(
            (f"Added latency {q} (s)", ours["added_latency_s"][q], base["added_latency_s"][q], 2)
        )
    rows += [
        ("Throughput, zero-latency fakes (jobs/s)", to["jobs_per_s"], tb["jobs_per_s"], 1),
        ("Bot CPU per job (ms)", to["cpu_ms_per_job"], tb["cpu_ms_per_job"], 2),
    ]
    meta = result["meta"]
    lines = [
        f"Job mix: {meta['jobs']} jobs ({meta['mix']}), schedule `{meta['schedule']}`, "
        f"{meta['mode']} run on {meta['cpus']} CPUs.",
        "",
        "| Metric | voicebot | Reference loop | Ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, a, b, digits in rows:
        lines.append(f"| {name} | {_fmt(a, digits)} | {_fmt(b, digits)} | {_ratio(a, b)} |")
    by_route = result["latency"].get("by_route", {})
    if by_route:
        lines += [
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
    lines += ["", "| Target | Measured | Goal | Met |", "|---|---:|---|:---:|"]
    for t in result["targets"]:
        lines.append(
            f"| {t['name']} | {_fmt(t['value'])} | {t['target']} | {'yes' if t['met'] else 'no'} |"
        )
    return "\n".join(lines)


def plot_cdf(path: Path, series: dict[str, Sequence[float]]) -> bool:
    """Draw the added-latency CDFs as a PNG with Pillow (the ``bench`` extra); False if absent."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return False
    width, height, left, bottom, top, right = 800, 500, 70, 60, 40, 30
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    values = [v for s in series.values() for v in s]
    x_max = max(1.0, math.ceil(max(values, default=1.0)))
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + plot_w * min(x, x_max) / x_max, top + plot_h * (1 - y)

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    step = max(1, math.ceil(x_max / 10))
    for tick in range(0, int(x_max) + 1, step):
        x, _ = xy(tick, 0)
        draw.line((x, height - bottom, x, height - bottom + 5), fill="black")
        draw.text((x - 4, height - bottom + 8), str(tick), fill="black")
    for i in range(0, 11, 2):
        _, y = xy(0, i / 10)
        draw.line((left - 5, y, left, y), fill="black")
        draw.line((left, y, width - right, y), fill=(225, 225, 225))
        draw.text((left - 30, y - 6), f"{i / 10:.1f}", fill="black")
    draw.text(
        (width // 2 - 120, height - 25), "added latency: reply - provider done (s)", fill="black"
    )
    draw.text((left, 12), "Added-latency CDF", fill="black")
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44)]
    for n, (name, data) in enumerate(series.items()):
        ordered = sorted(data)
        colour = colours[n % len(colours)]
        points = [xy(0, 0)]
        for i, v in enumerate(ordered):
            points += [xy(v, i / len(ordered)), xy(v, (i + 1) / len(ordered))]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.line(
            (width - 220, top + 20 + 18 * n, width - 190, top + 20 + 18 * n), fill=colour, width=3
        )
        draw.text((width - 185, top + 14 + 18 * n), name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG")
    return True
