"""The vendors' documented reference flow, as a user would write it from the docs.

Submit, sleep a fixed interval (5 s for speech-to-text, 3 s for text-to-speech), check the status,
and repeat up to 60 attempts. Each job runs its own loop from start to finish; the harness starts
the loops concurrently at the same arrival times the bot gets, so per-job numbers equal the
one-job-at-a-time reference code without the wait for the previous job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.fakes import API_KEY_CANTO, API_KEY_NANO
from bench.mix import NANO_STT_MODEL, NANO_TTS_MODEL, TTS_VOICE, JobSpec
from bot.audio import codec as audio

STT_INTERVAL = 5.0
TTS_INTERVAL = 3.0
MAX_ATTEMPTS = 60


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """One reference-loop job: its provider run, status checks made, and when it was done."""

    index: int
    run_id: str
    polls: int
    done_at: float | None  # monotonic; None when 60 attempts ran out


class ReferenceClient:
    """The documented calls, verbatim in spirit: no backoff, no estimate, fixed sleeps."""

    def __init__(self, session: aiohttp.ClientSession, nano_url: str, canto_url: str) -> None:
        self._session = session
        self._nano = nano_url.rstrip("/")
        self._canto = canto_url.rstrip("/")

    async def run(self, spec: JobSpec) -> BaselineResult:
        """Submit one job and check it at the documented interval until done or out of attempts."""
        if spec.kind == "tts":
            return await self._tts(spec)
        if spec.provider == "cantonese":
            return await self._cantonese(spec)
        return await self._nano_stt(spec)

    async def _nano_stt(self, spec: JobSpec) -> BaselineResult:
        form = aiohttp.FormData()
        form.add_field("audio", spec.audio, filename="voice.ogg", content_type="audio/ogg")
        form.add_field("model", NANO_STT_MODEL)
        form.add_field("language", "auto")
        form.add_field("actualDuration", f"{spec.size / 60:.4f}")
        headers = {"x-api-key": API_KEY_NANO}
        async with self._session.post(f"{self._nano}/transcribe", data=form, headers=headers) as r:
            run = await r.json()
        run_id = str(run["runId"])
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await asyncio.sleep(STT_INTERVAL)
            async with self._session.post(
                f"{self._nano}/transcribe/status", json={**run, "runId": run_id}, headers=headers
            ) as r:
                body: dict[str, Any] = await r.json()
            if body.get("status") == "completed":
                return BaselineResult(spec.index, run_id, attempt, time.monotonic())
            if body.get("status") in ("failed", "error"):
                break
        return BaselineResult(spec.index, run_id, MAX_ATTEMPTS, None)

    async def _cantonese(self, spec: JobSpec) -> BaselineResult:
        form = aiohttp.FormData()
        form.add_field("api_key", API_KEY_CANTO)
        form.add_field("data", spec.audio, filename="voice.ogg", content_type="audio/ogg")
        form.add_field("wait_for_completion", "false")
        async with self._session.post(f"{self._canto}/api/stt", data=form) as r:
            answer = await r.json()
        request_id = str(answer["data"]["request_id"])
        url = f"{self._canto}/api/speech-to-text/get-result"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await asyncio.sleep(STT_INTERVAL)
            async with self._session.get(
                url, params={"id": request_id}, headers={"x-api-key": API_KEY_CANTO}
            ) as r:
                body = await r.json()
            status = body.get("transcription", {}).get("status")
            if status == "completed":
                return BaselineResult(spec.index, request_id, attempt, time.monotonic())
            if status == "failed":
                break
        return BaselineResult(spec.index, request_id, MAX_ATTEMPTS, None)

    async def _tts(self, spec: JobSpec) -> BaselineResult:
        headers = {"x-api-key": API_KEY_NANO}
        payload = {"text": spec.text, "model": NANO_TTS_MODEL, "voice": TTS_VOICE}
        async with self._session.post(f"{self._nano}/tts", json=payload, headers=headers) as r:
            run = await r.json()
        run_id = str(run["runId"])
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await asyncio.sleep(TTS_INTERVAL)
            async with self._session.get(
                f"{self._nano}/tts/status", params={"runId": run_id}, headers=headers
            ) as r:
                body = await r.json()
            if body.get("status") == "completed":
                async with self._session.get(body["audioUrl"]) as r:
                    data = await r.read()
                # The same work the bot does before replying: a voice message, not an MP3 link.
                await asyncio.to_thread(audio.to_voice_clip, [data])
                return BaselineResult(spec.index, run_id, attempt, time.monotonic())
            if body.get("status") in ("failed", "error"):
                break
        return BaselineResult(spec.index, run_id, MAX_ATTEMPTS, None)


async def run_jobs(nano_url: str, canto_url: str, specs: Sequence[JobSpec]) -> list[BaselineResult]:
    """Start each job's reference loop at its arrival time; return when all loops ended."""
    async with aiohttp.ClientSession() as session:
        client = ReferenceClient(session, nano_url, canto_url)
        start = time.monotonic()

        async def one(spec: JobSpec) -> BaselineResult:
            delay = start + spec.arrival - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            return await client.run(spec)

        return list(await asyncio.gather(*(one(s) for s in specs)))
