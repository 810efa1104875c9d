"""Fake NanoGPT and cantonese.ai servers on 127.0.0.1 (port 0) speaking the documented wire shapes.

Usage::

    async with FakeNanoGpt() as fake:          # fake.url == "http://127.0.0.1:PORT/api"
        fake.push("transcribe", 402, {"error": "Insufficient balance"})   # one-shot override
        ...
        assert fake.requests[-1].headers["x-api-key"] == "test-nano-key"
        assert fake.submits["transcribe"] == 1

Routes (names used by ``push``, ``wait_for``, ``submits`` and ``RecordedRequest.route``):
    FakeNanoGpt: ``transcribe``, ``transcribe/status``, ``tts``, ``tts/status``, ``audio``
        (``audio`` serves generated audio for ``audioUrl``; with ``separate_audio_host=True`` it
        lives on a second port, i.e. another origin, so tests can check the key is not sent there).
    FakeCantonese: ``stt``, ``get-result``.

Knobs (plain attributes, change them any time):
    ``polls_to_complete``: the Nth status poll of a run completes (earlier polls: pending, then
        processing); ``processing_delay``: seconds after submit before a run may complete;
    ``sync_delay``: seconds a synchronous transcription takes to answer (it is counted as a
        submit, i.e. charged, as it arrives; ``answer_now.set()`` cuts the wait short);
    ``processing_time``: optional ``(kind, model, info) -> seconds`` deciding each new run's
        processing time once, at submit (wins over ``processing_delay``; ``info`` holds the run's
        fields, e.g. ``chargedDuration`` minutes, ``textLength``, ``size``); it may instead return
        ``(queue_seconds, seconds)``: STT runs then say "pending" while queued and "processing"
        after, never by poll count alone; TTS runs (whose documented status is only "pending")
        carry a ``queuePosition`` of one per ``queue_slot_seconds`` of queue left, 0 once
        processing; ``completions[run_id]`` records the ``time.monotonic()``
        at which that run's processing finished;
        ``finish_runs()`` makes every existing run ready now;
    FakeNanoGpt ``tts_mode``: ``"binary"`` (audio/mpeg body) or ``"json"`` (``audioUrl``).

Counters: ``submits[route]`` counts accepted (charged) submits; ``polls[run_id]`` counts polls.
A wrong or missing key answers 401 with a JSON error (after one-shot overrides, which win).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict

from testkit.fakes.audio import make_tone


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A multipart file part as the fake received it."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it: route name, method, path, query, headers and body."""

    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    raw: bytes = b""
    form_lists: dict[str, list[str]] = field(default_factory=dict)
    """Every value of each form field, for repeated fields (``timestamp_granularities[]``)."""


@dataclass(frozen=True, slots=True)
class _Override:
    status: int
    body: Any
    headers: dict[str, str]
    delay: float


@dataclass(slots=True)
class _Run:
    kind: str
    model: str
    created: float
    info: dict[str, Any]
    polls: int = 0
    delay: float | None = None  # set by ``processing_time``; None follows ``processing_delay``
    queued: float | None = None  # seconds of ``delay`` spent waiting in the provider's queue


class _FakeServer:
    """Shared machinery: start/stop, recording, one-shot overrides, waiting, counters."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.submits: collections.Counter[str] = collections.Counter()
        self.polls: collections.Counter[str] = collections.Counter()
        self.polls_to_complete = 3
        self.processing_delay = 0.0
        self.sync_delay = 0.0  # seconds a synchronous model takes to answer (after charging)
        self.answer_now = asyncio.Event()  # set: those waiting out sync_delay answer at once
        self.queue_slot_seconds = 2.0
        self.processing_time: (
            Callable[[str, str, Mapping[str, Any]], float | tuple[float, float]] | None
        ) = None
        self.completions: dict[str, float] = {}
        self._overrides: dict[str, collections.deque[_Override]] = collections.defaultdict(
            collections.deque
        )
        self._hits: collections.Counter[str] = collections.Counter()
        self._hit = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        self._runs: dict[str, _Run] = {}
        self.url = ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start listening on 127.0.0.1 with a free port; sets ``url``."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop every site this fake started."""
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    def push(
        self,
        route: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        """Queue a one-shot answer for ``route``: dict/list -> JSON, str/bytes -> sent as-is.

        ``delay`` seconds are slept before answering (to trigger client timeouts).
        """
        self._overrides[route].append(_Override(status, body, dict(headers or {}), delay))

    async def wait_for(self, route: str, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``route`` has received at least ``count`` requests in total."""
        async with asyncio.timeout(timeout):
            while self._hits[route] < count:
                self._hit.clear()
                await self._hit.wait()

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """The recorded requests for one route, oldest first."""
        return [r for r in self.requests if r.route == route]

    async def _listen(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def _record(self, route: str, request: web.Request) -> RecordedRequest:
        raw = b""
        body: Any = None
        form: dict[str, str] = {}
        form_lists: dict[str, list[str]] = {}
        files: dict[str, UploadedFile] = {}
        if request.content_type.startswith("multipart/"):
            # post() consumes the stream, so multipart requests keep parsed parts, not raw bytes.
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[name] = UploadedFile(
                        value.filename, value.content_type, value.file.read()
                    )
                else:
                    form[name] = str(value)
                    form_lists.setdefault(name, []).append(str(value))
        else:
            raw = await request.read()
            if request.content_type == "application/json":
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
        recorded = RecordedRequest(
            route=route,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            json=body,
            form=form,
            files=files,
            raw=raw,
            form_lists=form_lists,
        )
        self.requests.append(recorded)
        self._hits[route] += 1
        self._hit.set()
        return recorded

    async def _override(self, route: str) -> web.Response | None:
        queue = self._overrides.get(route)
        if not queue:
            return None
        override = queue.popleft()
        if override.delay:
            await asyncio.sleep(override.delay)
        return _respond(override.status, override.body, override.headers)

    def _new_run(self, kind: str, model: str, info: dict[str, Any]) -> str:
        run_id = uuid.uuid4().hex
        run = _Run(kind, model, time.monotonic(), info)
        if self.processing_time is not None:
            timing = self.processing_time(kind, model, info)
            if isinstance(timing, tuple):
                run.queued = max(0.0, timing[0])
                run.delay = run.queued + max(0.0, timing[1])
            else:
                run.delay = max(0.0, timing)
            self.completions[run_id] = run.created + run.delay
        self._runs[run_id] = run
        return run_id

    def finish_runs(self) -> None:
        """Make every existing run's processing finished as of now."""
        now = time.monotonic()
        for run_id, run in self._runs.items():
            run.delay = min(run.delay if run.delay is not None else 0.0, now - run.created)
            self.completions[run_id] = run.created + run.delay

    def _advance(self, run_id: str) -> tuple[_Run, str] | None:
        """Count a poll and return (run, "pending" | "processing" | "completed")."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        run.polls += 1
        self.polls[run_id] += 1
        delay = self.processing_delay if run.delay is None else run.delay
        now = time.monotonic()
        if run.polls >= self.polls_to_complete and now >= run.created + delay:
            return run, "completed"
        if run.queued is not None:
            return run, "pending" if now < run.created + run.queued else "processing"
        return run, "pending" if run.polls == 1 else "processing"

    def queue_position(self, run: _Run) -> int:
        """Where an unfinished run stands: one place per ``queue_slot_seconds`` of queue left (0
        once it is being processed), else from polls to go."""
        if run.queued is not None:
            left = run.created + run.queued - time.monotonic()
            return max(0, math.ceil(left / self.queue_slot_seconds))
        return max(self.polls_to_complete - run.polls, 1)


def _respond(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if isinstance(body, dict | list):
        return web.json_response(body, status=status, headers=headers)
    if isinstance(body, str):
        body = body.encode()
    return web.Response(status=status, body=body, headers=headers)


def _unauthorized() -> web.Response:
    return web.json_response({"error": "Invalid API key"}, status=401)


_ELEVEN_WORDS = [
    ("Hello", 0.0, 0.4, "speaker_0"),
    ("there.", 0.5, 0.9, "speaker_0"),
    ("Hi,", 1.2, 1.5, "speaker_1"),
    ("how", 1.6, 1.8, "speaker_1"),
    ("are", 1.9, 2.0, "speaker_1"),
    ("you?", 2.1, 2.4, "speaker_1"),
]


def _elevenlabs_words() -> list[dict[str, Any]]:
    """Words as Elevenlabs returns them: spacing tokens between words, speaker_id on each."""
    words: list[dict[str, Any]] = []
    for i, (text, start, end, speaker) in enumerate(_ELEVEN_WORDS):
        if i:
            prev_end = _ELEVEN_WORDS[i - 1][2]
            words.append(
                {
                    "text": " ",
                    "start": prev_end,
                    "end": start,
                    "type": "spacing",
                    "speaker_id": speaker,
                }
            )
        words.append(
            {"text": text, "start": start, "end": end, "type": "word", "speaker_id": speaker}
        )
    return words


_NANO_ASYNC_STT = frozenset({"Elevenlabs-STT"})
_NANO_ASYNC_TTS = frozenset({"Elevenlabs-Turbo-V2.5", "Elevenlabs-V3"})


class FakeNanoGpt(_FakeServer):
    """NanoGPT's ``/api/transcribe`` (+ ``/status``) and ``/api/tts`` (+ ``/status``)."""

    def __init__(
        self, api_key: str = "test-nano-key", *, separate_audio_host: bool = False
    ) -> None:
        super().__init__(api_key)
        self.tts_mode = "binary"
        self.separate_audio_host = separate_audio_host
        self.audio_origin = ""
        self._audio: bytes | None = None
        self._ids = itertools.count(1)

    @property
    def audio_bytes(self) -> bytes:
        """The MP3 every TTS answer carries (a real 0.5 s tone, made once)."""
        if self._audio is None:
            self._audio = make_tone(0.5, "mp3", rate=24000)
        return self._audio

    async def start(self) -> None:
        """Start the API (and, if asked, a second origin serving audio)."""
        app = web.Application(client_max_size=600 * 1024 * 1024)
        app.router.add_post("/api/transcribe", self._transcribe)
        app.router.add_post("/api/transcribe/status", self._transcribe_status)
        app.router.add_post("/api/tts", self._tts)
        app.router.add_get("/api/tts/status", self._tts_status)
        audio_app = app
        if self.separate_audio_host:
            audio_app = web.Application()
        audio_app.router.add_get("/audio/{name}", self._audio_file)
        origin = await self._listen(app)
        self.url = f"{origin}/api"
        self.audio_origin = await self._listen(audio_app) if self.separate_audio_host else origin

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    async def _transcribe(self, request: web.Request) -> web.Response:
        rec = await self._record("transcribe", request)
        if (override := await self._override("transcribe")) is not None:
            return override
        if not self._authorized(request):
            return _unauthorized()
        upload = rec.files.get("audio")
        model = rec.form.get("model", "")
        if upload is None or not model:
            return web.json_response({"error": "audio file and model are required"}, status=400)
        if len(upload.data) > 3 * 1024 * 1024:
            return web.json_response({"error": "File too large for direct upload"}, status=413)
        minutes = float(rec.form.get("actualDuration") or 0)
        self.submits["transcribe"] += 1
        if model in _NANO_ASYNC_STT:
            info = {
                "fileName": upload.filename,
                "fileSize": len(upload.data),
                "chargedDuration": minutes,
                "diarize": rec.form.get("diarize") == "true",
            }
            run_id = self._new_run("stt", model, info)
            return web.json_response(
                {
                    "runId": run_id,
                    "status": "pending",
                    "model": model,
                    "cost": 0.02,
                    "paymentSource": "USD",
                    **info,
                },
                status=202,
            )
        text = f"Fake transcript of {len(upload.data)} bytes from {upload.filename}."
        if self.sync_delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.answer_now.wait(), self.sync_delay)
        return web.json_response(
            {"transcription": text, "metadata": self._stt_metadata(model, rec, upload, minutes)}
        )

    @staticmethod
    def _stt_metadata(
        model: str, rec: RecordedRequest, upload: UploadedFile, minutes: float
    ) -> dict[str, Any]:
        language = rec.form.get("language", "auto")
        return {
            "fileName": upload.filename,
            "fileSize": len(upload.data),
            "chargedDuration": max(minutes, 0.1),
            "actualDuration": minutes,
            "language": "en" if language == "auto" else language,
            "cost": 0.001,
            "currency": "USD",
            "model": model,
        }

    async def _transcribe_status(self, request: web.Request) -> web.Response:
        rec = await self._record("transcribe/status", request)
        if (override := await self._override("transcribe/status")) is not None:
            return override
        if not self._authorized(request):
            return _unauthorized()
        run_id = rec.json.get("runId", "") if isinstance(rec.json, dict) else ""
        advanced = self._advance(run_id)
        if advanced is None or advanced[0].kind != "stt":
            return web.json_response({"error": "Run not found"}, status=404)
        run, status = advanced
        if status != "completed":
            return web.json_response({"status": status})
        return web.json_response(self._stt_completed(run))

    @staticmethod
    def _stt_completed(run: _Run) -> dict[str, Any]:
        first = " ".join(w[0] for w in _ELEVEN_WORDS[:2])
        second = " ".join(w[0] for w in _ELEVEN_WORDS[2:])
        return {
            "status": "completed",
            "transcription": f"{first} {second}",
            "metadata": {
                "fileName": run.info["fileName"],
                "fileSize": run.info["fileSize"],
                "chargedDuration": run.info["chargedDuration"],
                "actualDuration": run.info["chargedDuration"],
                "language": "en",
                "cost": 0.02,
                "currency": "USD",
                "model": run.model,
            },
            "words": _elevenlabs_words(),
            "diarization": {
                "segments": [
                    {"speaker": "speaker_0", "text": first, "start": 0.0, "end": 0.9},
                    {"speaker": "speaker_1", "text": second, "start": 1.2, "end": 2.4},
                ]
            },
        }

    async def _tts(self, request: web.Request) -> web.Response:
        rec = await self._record("tts", request)
        if (override := await self._override("tts")) is not None:
            return override
        if not self._authorized(request):
            return _unauthorized()
        body = rec.json if isinstance(rec.json, dict) else {}
        text, model = body.get("text"), body.get("model")
        if not isinstance(text, str) or not text or not isinstance(model, str):
            return web.json_response({"error": "text and model are required"}, status=400)
        self.submits["tts"] += 1
        if model in _NANO_ASYNC_TTS:
            info = {"voice": body.get("voice"), "textLength": len(text)}
            run_id = self._new_run("tts", model, info)
            return web.json_response(
                {
                    "status": "pending",
                    "runId": run_id,
                    "model": model,
                    "cost": 0.05,
                    "paymentSource": "USD",
                    "isApiRequest": True,
                },
                status=202,
            )
        if self.tts_mode == "json":
            return web.json_response(
                {
                    "audioUrl": self._audio_url(),
                    "contentType": "audio/mpeg",
                    "model": model,
                    "cost": 0.001,
                    "currency": "USD",
                }
            )
        return web.Response(body=self.audio_bytes, content_type="audio/mpeg")

    def _audio_url(self) -> str:
        return f"{self.audio_origin}/audio/speech-{next(self._ids)}.mp3"

    async def _tts_status(self, request: web.Request) -> web.Response:
        rec = await self._record("tts/status", request)
        if (override := await self._override("tts/status")) is not None:
            return override
        if not self._authorized(request):
            return _unauthorized()
        advanced = self._advance(rec.query.get("runId", ""))
        if advanced is None or advanced[0].kind != "tts":
            return web.json_response({"error": "Run not found"}, status=404)
        run, status = advanced
        if status != "completed":
            # The documented TTS status has no "processing": unfinished is always "pending".
            return web.json_response(
                {"status": "pending", "queuePosition": self.queue_position(run)}
            )
        return web.json_response(
            {"status": "completed", "audioUrl": self._audio_url(), "contentType": "audio/mpeg"}
        )

    async def _audio_file(self, request: web.Request) -> web.Response:
        await self._record("audio", request)
        if (override := await self._override("audio")) is not None:
            return override
        return web.Response(body=self.audio_bytes, content_type="audio/mpeg")


class FakeCantonese(_FakeServer):
    """cantonese.ai's ``POST /api/stt`` and ``GET /api/speech-to-text/get-result``."""

    transcription = "你好，今日天氣好好。"
    fused_transcription = "你好，今日天氣好好！"
    diarization = "SPEAKER_00: 你好，\nSPEAKER_01: 今日天氣好好！"

    def __init__(self, api_key: str = "test-canto-key") -> None:
        super().__init__(api_key)

    async def start(self) -> None:
        """Start the API; ``url`` has no path (routes are ``/api/...``)."""
        app = web.Application(client_max_size=600 * 1024 * 1024)
        app.router.add_post("/api/stt", self._stt)
        app.router.add_get("/api/speech-to-text/get-result", self._get_result)
        self.url = await self._listen(app)

    async def _stt(self, request: web.Request) -> web.Response:
        rec = await self._record("stt", request)
        if (override := await self._override("stt")) is not None:
            return override
        if rec.form.get("api_key") != self.api_key:
            return web.json_response({"success": False, "error": "Invalid API key"}, status=401)
        upload = rec.files.get("data")
        if upload is None or not upload.data:
            return web.json_response({"success": False, "error": "No audio file"}, status=400)
        self.submits["stt"] += 1
        info = {"size": len(upload.data), "diarize": rec.form.get("with_diarization") == "true"}
        request_id = self._new_run("stt", "cantonese", info)
        return web.json_response(
            {"success": True, "data": {"request_id": request_id, "status": "processing"}}
        )

    async def _get_result(self, request: web.Request) -> web.Response:
        rec = await self._record("get-result", request)
        if (override := await self._override("get-result")) is not None:
            return override
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"success": False, "error": "Invalid API key"}, status=401)
        request_id = rec.query.get("id", "")
        advanced = self._advance(request_id)
        if advanced is None:
            return web.json_response({"success": False, "error": "Transcription not found"})
        run, status = advanced
        result: dict[str, Any] = {"request_id": request_id, "status": status}
        if status == "completed":
            result.update(
                transcription=self.transcription,
                fused_transcription=self.fused_transcription,
                duration_s=3.2,
            )
            if run.info["diarize"]:
                result["diarization"] = self.diarization
        return web.json_response({"success": True, "transcription": result})
