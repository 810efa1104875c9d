"""The benchmark harness runs end to end in its smallest mode and writes the expected report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.process import ROOT, subprocess_env

# About 40 s here (PostgreSQL included). The harness's own watchdog fires first and prints every
# thread's stack, so a stall on a slow or odd machine says where it was instead of only "timed out".
WATCHDOG = 150
TIMEOUT = WATCHDOG + 30


@pytest.mark.timeout(TIMEOUT + 30)
def test_bench_smoke_writes_report(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)]
    try:
        proc = subprocess.run(
            [*command, "--watchdog", str(WATCHDOG)],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        pytest.fail(f"bench smoke still running after {TIMEOUT} s; stderr:\n{err[-6000:]}")
    assert proc.returncode == 0, proc.stderr[-6000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    assert set(result) >= {
        "meta",
        "latency",
        "capacity",
        "probe",
        "inflight",
        "resume",
        "transcode",
        "store",
        "targets",
    }
    for side in ("ours", "baseline"):
        latency = result["latency"][side]
        assert latency["completed"] == latency["jobs"] == 3
        assert set(latency["added_latency_s"]) >= {"p50", "p95", "p99"}
        assert latency["polls_per_job"]["median"] >= 1
    (level,) = result["capacity"]["levels"]
    for side in ("reference", "sqlite", "postgres"):
        assert level[side]["clients"] == 4
        assert level[side]["jobs_per_s"] > 0 and level[side]["cpu_ms_per_job"] > 0
    assert result["latency_postgres"]["ours"]["completed"] == 3
    assert result["probe"]["cpu_ms"] > 0
    # The reference loop sleeps 5 s / 3 s before its first check: it cannot beat that.
    assert result["latency"]["baseline"]["added_latency_s"]["p50"] > 0
    assert result["resume"]["delivered"] == result["resume"]["jobs"]
    assert result["inflight"]["peak_rss_mb"] > 0
    assert result["store"]["rows"] == 2000
    names = {t["name"] for t in result["targets"]}
    assert names >= {"capacity, ratio (best level each)", "CPU per job, ratio (most clients)"}
    assert "| Metric | reference | voicebot SQLite | ratio | voicebot PostgreSQL | ratio |" in (
        proc.stdout
    )
    # The plot needs Pillow (the ``bench`` extra), which the test command does not install.
    if importlib.util.find_spec("PIL") is not None:
        assert (tmp_path / "capacity.png").stat().st_size > 0
    else:
        assert not (tmp_path / "capacity.png").exists()
