"""The voice-clip benchmark runs end to end on a little speech and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.local_engines import joe_voice_path, tiny_en_path
from testkit.process import ROOT, subprocess_env


@pytest.mark.timeout(240)
def test_bench_clip_writes_figures(tmp_path: Path) -> None:
    tiny_en_path(), joe_voice_path()  # skips with the reason when an extra is missing
    command = ["-m", "bench.clip", "--seconds", "20", "--repeat", "1", "--out", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads((tmp_path / "clip.json").read_text())
    for name in ("mp3_24k", "mp3_44k", "wav_22k", "fake_tts_0.5s"):
        cpu = figures["cpu_ms_per_clip"][name]
        assert cpu["before"] > 0 and cpu["now"] > 0 and cpu["bytes"]["now"] > 0
    assert figures["provider_opus_kept"] is True
    assert set(figures["wer"]) == {"mp3", "before", "now"}
    assert all(0 <= w <= 1 for w in figures["wer"].values())
