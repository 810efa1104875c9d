"""Fake OpenAI-compatible speech server (``/v1/audio/transcriptions``, ``/v1/audio/speech``).

Follows the OpenAI API reference: multipart ``file``/``model``/``language``/``response_format``/
``timestamp_granularities[]``/``chunking_strategy``; ``json``, ``verbose_json`` (segments, words
only when asked) and ``diarized_json`` (``transcript.text.segment`` items, speakers A, B...)
answers; ``/audio/speech`` JSON ``{model, input, voice, instructions, response_format, speed}``
answered with audio bytes; errors as ``{"error": {"message", "type", "param", "code"}}``; and the
``x-ratelimit-*`` headers on every answer.

Usage::

    async with FakeOpenAi() as fake:           # fake.url == "http://127.0.0.1:PORT/v1"
        fake.push("transcriptions", 500, "<html>oops</html>")    # one-shot override
        fake.rate_limited = 1                     # next request: 429 with reset headers only

Knobs: ``api_key=None`` accepts any request (self-hosted servers without keys);
``refuse_verbose=True`` answers ``verbose_json`` with the 400 OpenAI gives json-only models (as
do servers that do not implement it); ``stt_models``/``tts_models`` are the known models (others
404 ``model_not_found``); ``speech_route=False`` is a transcription-only server. Routes:
``transcriptions``, ``speech``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from testkit.fakes.audio import decode_info, make_tone, ogg_duration, sound_spans
from testkit.fakes.providers import RecordedRequest, _FakeServer

MAX_UPLOAD = 25 * 1024 * 1024
FORMATS = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm")
JSON_ONLY = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
DIARIZE = "gpt-4o-transcribe-diarize"
_SPEECH_TYPES = {
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("ogg", "audio/ogg"),
    "aac": ("m4a", "audio/aac"),
    "flac": ("flac", "audio/flac"),
    "wav": ("wav", "audio/wav"),
}


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: Any = None,
    code: Any = None,
) -> web.Response:
    """An error answer in OpenAI's documented shape."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


class FakeOpenAi(_FakeServer):
    """``/v1/audio/transcriptions`` and ``/v1/audio/speech`` of an OpenAI-compatible server."""

    def __init__(
        self, api_key: str | None = "test-openai-key", *, refuse_verbose: bool = False
    ) -> None:
        super().__init__(api_key or "")
        self.require_key = api_key is not None
        self.refuse_verbose = refuse_verbose
        self.stt_models = {"whisper-1", "whisper-large-v3-turbo", *JSON_ONLY, DIARIZE}
        self.tts_models = {"tts-1", "gpt-4o-mini-tts", "kokoro"}
        self.speech_route = True
        """False: a transcription-only server (faster-whisper-server): ``/v1/audio/speech``
        answers FastAPI's bare 404 ``{"detail": "Not Found"}``."""
        self.rate_limited = 0
        """Answer this many next requests with 429 + x-ratelimit reset headers (no Retry-After)."""
        self.text = "Hello there. Hi, how are you?"
        self.listen = False
        """Recognise what is in the upload: one ``verbose_json`` segment (and word) per stretch
        of sound, at its real time (``testkit/fakes/audio.sound_spans``), text ``word<N>``."""
        self.delay = 0.0
        """Seconds each transcription takes (``max_in_flight`` counts them side by side)."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.answer_limit: int | None = None
        """Answer only this many transcriptions in all: later ones are received (recorded) and
        held unanswered, in flight, until :meth:`release` (a kill test's real condition)."""
        self.quick = False
        """Take an Ogg upload's duration from its last page (no decoding: a 2-hour test)."""
        self._released = asyncio.Event()

    async def start(self) -> None:
        """Listen on 127.0.0.1; ``url`` ends in ``/v1`` like OpenAI's base URL."""
        app = web.Application(client_max_size=MAX_UPLOAD * 2)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        self.url = f"{await self._listen(app)}/v1"

    def release(self, limit: int | None = None) -> None:
        """Raise (or with None lift) :attr:`answer_limit`; held requests go on."""
        self.answer_limit = limit
        self._released.set()

    async def _hold(self) -> None:
        while self.answer_limit is not None and self.submits["transcriptions"] >= self.answer_limit:
            self._released.clear()
            await self._released.wait()

    # -- shared ------------------------------------------------------------------------------

    def _gate(self, request: web.Request) -> web.Response | None:
        """Key check and rate limiting, in the order OpenAI applies them."""
        if self.require_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
            shown = f"{sent[:3]}***{sent[-4:]}" if sent else ""
            return openai_error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        if self.rate_limited:
            self.rate_limited -= 1
            response = openai_error(
                429,
                "Rate limit reached for requests. Please try again in 1s.",
                kind="requests",
                code="rate_limit_exceeded",
            )
            response.headers.update(
                {
                    "x-ratelimit-limit-requests": "20",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "1s",
                    "x-ratelimit-remaining-tokens": "9000",
                    "x-ratelimit-reset-tokens": "6m0s",
                }
            )
            return response
        return None

    @staticmethod
    def _limits(response: web.Response) -> web.Response:
        response.headers.update(
            {
                "x-ratelimit-limit-requests": "20",
                "x-ratelimit-remaining-requests": "19",
                "x-ratelimit-reset-requests": "3s",
            }
        )
        return response

    # -- /audio/transcriptions ---------------------------------------------------------------

    async def _transcriptions(self, request: web.Request) -> web.Response:
        rec = await self._record("transcriptions", request)
        if (override := await self._override("transcriptions")) is not None:
            return override
        if (refused := self._gate(request)) is not None:
            return refused
        if (invalid := self._check_upload(rec)) is not None:
            return invalid
        model = rec.form["model"]
        fmt = rec.form.get("response_format", "json")
        if (invalid := self._check_format(rec, model, fmt)) is not None:
            return invalid
        await self._hold()
        self.submits["transcriptions"] += 1
        upload = rec.files["file"].data
        duration = ogg_duration(upload) if self.quick else decode_info(upload)[2]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.listen and fmt == "verbose_json":
            return self._limits(web.json_response(_heard(rec.files["file"].data, duration)))
        return self._limits(web.json_response(self._transcript(rec, model, fmt, duration)))

    def _check_upload(self, rec: RecordedRequest) -> web.Response | None:
        upload = rec.files.get("file")
        if upload is None:
            return openai_error(400, "you must provide a file", param="file")
        if not rec.form.get("model"):
            return openai_error(400, "you must provide a model parameter", param="model")
        if len(upload.data) > MAX_UPLOAD:
            return openai_error(
                413,
                f"Maximum content size limit ({MAX_UPLOAD}) exceeded "
                f"({len(upload.data)} bytes read)",
                kind="server_error",
            )
        ext = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
        if ext not in FORMATS:
            return openai_error(
                400,
                f"Invalid file format. Supported formats: {list(FORMATS)}",
                param="file",
                code="invalid_value",
            )
        if rec.form["model"] not in self.stt_models:
            return openai_error(
                404,
                f"The model `{rec.form['model']}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return None

    def _check_format(self, rec: RecordedRequest, model: str, fmt: str) -> web.Response | None:
        allowed = {"json", "text", "srt", "verbose_json", "vtt"}
        if model.startswith(JSON_ONLY):
            allowed = {"json", "text"} | ({"diarized_json"} if model == DIARIZE else set())
        if self.refuse_verbose:
            allowed.discard("verbose_json")
        if fmt not in allowed:
            return openai_error(
                400,
                f"response_format '{fmt}' is not compatible with model '{model}'. "
                f"Use {' or '.join(repr(a) for a in sorted(allowed))} instead.",
                param="response_format",
                code="unsupported_value",
            )
        if "timestamp_granularities[]" in rec.form and fmt != "verbose_json":
            return openai_error(
                400,
                "timestamp_granularities is only supported with response_format verbose_json",
                param="timestamp_granularities",
            )
        return None

    def _transcript(
        self, rec: RecordedRequest, model: str, fmt: str, duration: float
    ) -> dict[str, Any]:
        halves = _halves(self.text)
        middle = round(duration / 2, 2)
        usage = {"type": "duration", "seconds": math.ceil(duration)}
        if fmt == "diarized_json":
            spans = ((0.0, middle, "A"), (middle, round(duration, 2), "B"))
            segments = [
                {
                    "type": "transcript.text.segment",
                    "id": f"seg_{i:03d}",
                    "start": start,
                    "end": end,
                    "text": text,
                    "speaker": speaker,
                }
                for i, (text, (start, end, speaker)) in enumerate(zip(halves, spans, strict=True))
            ]
            return {
                "task": "transcribe",
                "duration": duration,
                "text": self.text,
                "segments": segments,
                "usage": usage,
            }
        if fmt != "verbose_json":
            return {"text": self.text, "usage": usage}
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": "english",
            "duration": duration,
            "text": self.text,
            "usage": usage,
        }
        # Granularities absent = segments only (the documented default); present = what's asked.
        asked = set(rec.form_lists.get("timestamp_granularities[]", ())) or {"segment"}
        if "segment" in asked:
            body["segments"] = [
                _verbose_segment(0, 0.0, middle, halves[0]),
                _verbose_segment(1, middle, round(duration, 2), halves[1]),
            ]
        if "word" in asked:
            words = " ".join(halves).split()
            step = duration / len(words)
            body["words"] = [
                {"word": w, "start": round(i * step, 2), "end": round((i + 1) * step, 2)}
                for i, w in enumerate(words)
            ]
        return body

    # -- /audio/speech -----------------------------------------------------------------------

    async def _speech(self, request: web.Request) -> web.Response:
        rec = await self._record("speech", request)
        if (override := await self._override("speech")) is not None:
            return override
        if not self.speech_route:
            # FastAPI's answer for a route it does not have: no OpenAI error, no code.
            return web.json_response({"detail": "Not Found"}, status=404)
        if (refused := self._gate(request)) is not None:
            return refused
        body = rec.json if isinstance(rec.json, dict) else None
        if body is None:
            return openai_error(400, "We could not parse the JSON body of your request.")
        for field in ("model", "input", "voice"):
            if not body.get(field):
                return openai_error(400, f"Missing required parameter: '{field}'.", param=field)
        text, model = str(body["input"]), str(body["model"])
        if len(text) > 4096:
            return openai_error(
                400,
                "String should have at most 4096 characters",
                param="input",
                code="string_above_max_length",
            )
        if model not in self.tts_models:
            return openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        fmt = body.get("response_format", "mp3")
        if fmt not in _SPEECH_TYPES:
            return openai_error(400, f"Invalid value: '{fmt}'.", param="response_format")
        speed = body.get("speed", 1.0)
        if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
            return openai_error(400, f"{speed} is not a valid speed", param="speed")
        self.submits["speech"] += 1
        container, content_type = _SPEECH_TYPES[fmt]
        # About as long as the text takes to say, so joined parts are audibly longer.
        seconds = min(5.0, 0.3 + len(text) / 60)
        audio = make_tone(seconds, container, rate=24000)
        return self._limits(web.Response(body=audio, content_type=content_type))


def _halves(text: str) -> tuple[str, str]:
    """``text`` cut at the sentence end nearest its middle (the two segments' texts)."""
    ends = [i + 1 for i in range(len(text) - 1) if text[i] in ".?!" and text[i + 1] == " "]
    if not ends:
        return text, ""
    cut = min(ends, key=lambda i: abs(i - len(text) // 2))
    return text[:cut].strip(), text[cut:].strip()


def _heard(data: bytes, duration: float) -> dict[str, Any]:
    """A ``verbose_json`` answer with one segment and one word per stretch of sound."""
    spans = sound_spans(data)
    texts = [f"word{i + 1}" for i in range(len(spans))]
    return {
        "task": "transcribe",
        "language": "english",
        "duration": duration,
        "text": " ".join(texts),
        "usage": {"type": "duration", "seconds": math.ceil(duration)},
        "segments": [
            _verbose_segment(i, round(a, 3), round(b, 3), t)
            for i, ((a, b), t) in enumerate(zip(spans, texts, strict=True))
        ],
    }


def _verbose_segment(index: int, start: float, end: float, text: str) -> dict[str, Any]:
    """One verbose_json segment with every field the reference lists."""
    return {
        "id": index,
        "seek": 0,
        "start": start,
        "end": end,
        "text": f" {text}",
        "tokens": [50364 + index, 2425, 456],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 0.9,
        "no_speech_prob": 0.01,
    }
