"""The local-engine benchmark runs end to end in its quick mode and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.local_engines import joe_voice_path, tiny_en_path
from testkit.process import ROOT, subprocess_env


@pytest.mark.timeout(240)
def test_bench_local_quick_writes_figures(tmp_path: Path) -> None:
    tiny_en_path(), joe_voice_path()  # skips with the reason when an extra is missing
    proc = subprocess.run(
        [sys.executable, "-m", "bench.local", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads((tmp_path / "local.json").read_text())
    assert figures["stt"]["realtime_factor"] > 0 and figures["tts"]["chars_per_second"] > 0
    lag = figures["event_loop_lag"]
    assert {"idle", "two_transcriptions"} <= set(lag) and lag["two_transcriptions"]["p99_ms"] >= 0
    assert figures["peak_rss_mb"] > 0
