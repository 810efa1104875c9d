"""Long recordings end to end, in-process: a synthesized N-minute recording (default 120) through
split → parts (fake OpenAI-compatible server that hears the real sound spans) → stitched
transcript → a summary (fake chat completions), with the time of each stage.

Run: ``.venv/bin/python -m bench.long_audio [--minutes 120] [--max-upload 3145728]``.
Prints one JSON object; the figures are for comparison on the same machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.app.core import Core
from bot.chat import render, replies
from bot.config.load import parse_config
from bot.jobs.poller import Reach
from bot.model.job import Job, JobKind, JobState, Part
from bot.model.speech import Origin, Transcript
from testkit.fakes.chat import FakeChat
from testkit.fakes.openai import FakeOpenAi
from testkit.support import FakeClock, RecordingDeliverer, config_dict
from testkit.synth import speechlike

ORIGIN = Origin(platform="bench", chat_id="c", user_id="u", reply_to="m")


async def _drive(core: Core, clock: FakeClock, done: RecordingDeliverer, count: int) -> None:
    while len(done.delivered) < count:
        await core.poller.run_once()
        next_at = await core.store.claims.next_wakeup(Reach(["bench"]))
        if next_at is None and len(done.delivered) < count:
            raise RuntimeError("nothing left to do, yet not delivered")
        clock.now = max(clock.now + 0.5, next_at or clock.now)


def _config(
    folder: Path, minutes: float, max_upload: int, whisper_url: str, chat_url: str
) -> dict[str, Any]:
    """Speech-to-text on the fake Whisper server (its upload limit forces parts), the LLM on the
    fake chat server."""
    data = config_dict(folder, limits={"max_audio_minutes": minutes + 1})
    data["providers"]["w"] = {
        "type": "openai", "base_url": whisper_url, "api_key": "k",
        "max_upload_bytes": max_upload,
    }  # fmt: skip
    data["providers"]["brain"] = {"type": "openai", "base_url": chat_url, "api_key": "k"}
    data["stt"] = {"provider": "w", "model": "whisper-1"}
    data["llm"] = {"provider": "brain", "model": "gpt-4o-mini", "max_input_tokens": 8000}
    return data


def _timing_error(transcript: Transcript, words: Sequence[tuple[float, float]]) -> float:
    """The largest gap, in seconds, between a heard segment's ends and the word it matches."""
    return max(
        max(abs(s.start - a), abs(s.end - b))
        for s, (a, b) in zip(transcript.segments, words, strict=False)
        if s.start is not None and s.end is not None
    )


async def _stages(
    core: Core, clock: FakeClock, out: RecordingDeliverer, data: bytes, figures: dict[str, Any]
) -> tuple[list[Part], Job]:
    """Accept, transcribe and summarise ``data``, each stage's seconds into ``figures``: the
    transcription's parts and the summary job as created."""
    t = time.perf_counter()
    job = await core.service.transcribe(ORIGIN, data, "meeting.ogg")
    figures["accept_s"] = time.perf_counter() - t
    t = time.perf_counter()
    await _drive(core, clock, out, 1)
    figures["transcribe_s"] = time.perf_counter() - t
    parts = await core.store.parts.of(job.id)
    t = time.perf_counter()
    summary = await core.service.text_job(ORIGIN, job.id, "summary", "en")
    await _drive(core, clock, out, 2)
    figures["summary_s"] = time.perf_counter() - t
    return parts, summary


async def run(minutes: float, max_upload: int, folder: Path) -> dict[str, Any]:
    """Accept, transcribe in parts and summarise one long recording; each stage's figures."""
    t0 = time.perf_counter()
    rec = speechlike(minutes * 60)
    figures: dict[str, Any] = {"minutes": minutes, "synth_s": time.perf_counter() - t0}
    async with FakeOpenAi("k") as whisper, FakeChat("k") as chat:
        whisper.listen = True
        chat.context_tokens = 8000 + 2000  # the route's input budget, and room for the answer
        data = _config(folder, minutes, max_upload, whisper.url, chat.url)
        clock, out = FakeClock(), RecordingDeliverer()
        core = await Core.open(parse_config(data, env={}), clock=clock)
        core.worker.register("bench", out)
        try:
            parts, summary = await _stages(core, clock, out, rec.data, figures)
        finally:
            await core.close()
    done, text_job = out.delivered[0][0], out.delivered[1][0]
    t_ = done.transcript
    assert t_ is not None and done.state is JobState.COMPLETED
    reply = replies.transcript_reply(done, limit=4096, max_messages=3)
    figures.update(
        parts=len(parts),
        part_seconds=[round(p.duration, 1) for p in parts],
        uploads=whisper.submits["transcriptions"],
        words=len(rec.words),
        words_heard=len(t_.segments),
        max_timing_error_s=_timing_error(t_, rec.words),
        srt_cues=len(render.subtitle_cues(t_)),
        files=[f.filename.rsplit(".", 1)[1] for f in reply.files],
        summary_state=text_job.state.value,
        summary_kind=text_job.kind is JobKind.TEXT and summary.id == text_job.id,
        chat_requests=chat.submits["chat"],
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--max-upload", type=int, default=3 * 1024 * 1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(args.minutes, args.max_upload, Path(tmp)))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
