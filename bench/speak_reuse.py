"""N identical /speak requests on the real core, without and with the stored clip's reuse, in
one run: provider requests, audio-thread CPU and wall time (``python -m bench.speak_reuse``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from bot.model.job import Job
from testkit.core import CoreWithFakes
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import ORIGIN, harness_config

_LOGGER = logging.getLogger(__name__)

TEXT = "Hello there, this is the same sentence, asked for again and again."


async def _never(*args: Any) -> Job | None:
    """Reuse turned off: every request is synthesized (the behaviour before issue 25 item 3)."""
    return None


async def _run(requests: int, reuse: bool, clip_seconds: float) -> dict[str, float]:
    """``requests`` identical /speak jobs, each driven to its reply before the next."""
    async with FakeNanoGpt() as nano, FakeCantonese() as canto:
        nano._audio = make_tone(clip_seconds, "mp3", rate=24000)  # a sentence's worth
        with tempfile.TemporaryDirectory() as tmp:
            h = CoreWithFakes(harness_config(Path(tmp), nano, canto))
            core = await h.open()
            patch = mock.patch("bot.service.intake.reuse", _never)
            try:
                if not reuse:
                    patch.start()
                cpu0, wall0 = core.audio.cpu_seconds, time.perf_counter()
                for _ in range(requests):
                    await core.service.speak(ORIGIN, TEXT)
                    await h.drive()
                wall = time.perf_counter() - wall0
                audio = core.audio.cpu_seconds - cpu0
            finally:
                if not reuse:
                    patch.stop()
                await h.close()
            assert len(h.out.delivered) == requests and all(c for _, c in h.out.delivered)
    return {
        "provider_requests": len(nano.requests_to("tts")),
        "audio_cpu_ms": 1000 * audio,
        "wall_ms_per_request": 1000 * wall / requests,
    }


async def measure(requests: int = 50, clip_seconds: float = 3.0) -> dict[str, Any]:
    """Both runs and the ratios of reused to synthesized."""
    before = await _run(requests, False, clip_seconds)
    after = await _run(requests, True, clip_seconds)
    return {"requests": requests, "clip_seconds": clip_seconds, "before": before, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.requests, args.clip_seconds)), indent=2))


if __name__ == "__main__":
    main()
