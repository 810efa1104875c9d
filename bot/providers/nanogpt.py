"""NanoGPT speech-to-text (/transcribe) and text-to-speech (/tts): move bytes, parse shapes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.model.errors import (
    ContentPolicyViolation,
    PayloadTooLarge,
    ProviderError,
    ProviderJobFailed,
)
from bot.model.speech import (
    AudioInput,
    Segment,
    SpeechAudio,
    SttOptions,
    Transcript,
    TtsOptions,
    Word,
)
from bot.providers.base import PollResult, PollStatus, SttCapabilities, Ticket, TtsCapabilities
from bot.providers.chat import chat_endpoint
from bot.providers.http import HttpAnswer, HttpEndpoint, HttpTransport, malformed
from bot.providers.values import float_or_none, int_or_none, segments_or_empty, str_or_none

if TYPE_CHECKING:
    from bot.providers.registry import BuildContext, Built, ProviderConfig

_LOGGER = logging.getLogger(__name__)

NAME = "nanogpt"
MAX_DIRECT_UPLOAD = 3_000_000
"""NanoGPT docs: direct multipart uploads up to 3 MB (larger files need a public URL)."""

_FORMATS = frozenset({"ogg", "oga", "opus", "mp3", "wav", "m4a", "mp4", "webm", "flac", "aac"})
_PLAIN_STT = SttCapabilities(
    asynchronous=False,
    diarization=False,
    timestamps=False,
    formats=_FORMATS,
    max_upload_bytes=MAX_DIRECT_UPLOAD,
)
_ASYNC_STT = SttCapabilities(
    asynchronous=True,
    diarization=True,
    timestamps=True,
    formats=_FORMATS,
    max_upload_bytes=MAX_DIRECT_UPLOAD,
    # The docs poll every 5 s but state no minimum; 1 s keeps short notes snappy.
    min_poll_interval=1.0,
)
_STT_MODELS: dict[str, SttCapabilities] = {
    "Whisper-Large-V3": _PLAIN_STT,
    "Wizper": _PLAIN_STT,
    "Elevenlabs-STT": _ASYNC_STT,
}

_ASYNC_TTS_MODELS = frozenset({"Elevenlabs-Turbo-V2.5", "Elevenlabs-V3"})
# Character limits: OpenAI documents 4096 for tts-1/tts-1-hd/gpt-4o-mini-tts; ElevenLabs documents
# 5000 per request for its models behind NanoGPT's async route. Kokoro has no published limit;
# 5000 is our assumption, and unknown models get the conservative OpenAI figure.
_TTS_MAX_CHARS: dict[str, int] = {
    "tts-1": 4096,
    "tts-1-hd": 4096,
    "gpt-4o-mini-tts": 4096,
    "Kokoro-82m": 5000,
    "Elevenlabs-Turbo-V2.5": 5000,
    "Elevenlabs-V3": 5000,
}
_DEFAULT_TTS_MAX_CHARS = 4096
STT_MODELS = tuple(_STT_MODELS)
"""Speech-to-text model names voicebot knows (exact spelling; check-config suggests them)."""
TTS_MODELS = tuple(_TTS_MAX_CHARS)
"""Text-to-speech model names voicebot knows."""
_CONTENT_POLICY = "CONTENT_POLICY_VIOLATION"


def _minutes(seconds: float) -> str:
    """Format a duration as the minutes string NanoGPT's ``actualDuration`` field expects."""
    text = f"{max(seconds, 0.0) / 60:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def build(config: ProviderConfig, context: BuildContext) -> Built:
    """Registry factory: both roles over the shared transport."""
    from bot.providers.registry import Built

    kwargs: dict[str, Any] = {
        "api_key": config.api_key or "",
        "base_url": config.base_url or "",
        "timeout": config.timeout,
        "name": config.name,
    }
    # Chat completions live under the OpenAI-compatible ``/api/v1`` with a bearer key (NanoGPT's
    # text-generation docs), beside the speech routes under ``/api``.
    chat_url = f"{(config.base_url or '').rstrip('/')}/v1"
    return Built(
        stt=NanoGptSpeechToText(context.http, **kwargs),
        tts=NanoGptTextToSpeech(context.http, **kwargs),
        llm=chat_endpoint(context.http, config.name, chat_url, config.api_key, config.timeout),
    )


class _NanoGptClient:
    """What both NanoGPT roles share: one endpoint (key header, base URL, timeout)."""

    def __init__(
        self,
        http: HttpTransport,
        *,
        api_key: str,
        base_url: str,
        timeout: float = 120.0,
        name: str = NAME,
    ) -> None:
        self.name = name
        self._http = HttpEndpoint(
            http,
            name,
            base_url.rstrip("/"),
            timeout,
            headers={"x-api-key": api_key},
            secrets=(api_key,),
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> HttpAnswer:
        return await self._http.call(method, path, headers={"Accept": "application/json"}, **kwargs)

    async def _download(self, url: str, content_type: str | None) -> SpeechAudio:
        """Fetch generated audio; the key only goes along when the URL is on the API's origin."""
        answer = await self._http.download(url)
        return SpeechAudio(answer.body, content_type or answer.content_type)


class NanoGptSpeechToText(_NanoGptClient):
    """NanoGPT ``/transcribe``: synchronous Whisper-style models and asynchronous Elevenlabs-STT."""

    def capabilities(self, model: str) -> SttCapabilities:
        """Return what ``model`` supports; unknown models are treated as synchronous and plain."""
        return _STT_MODELS.get(model, _PLAIN_STT)

    async def submit(self, audio: AudioInput, options: SttOptions) -> Transcript | Ticket:
        """Upload ``audio`` directly (multipart, <= 3 MB).

        Returns:
            A transcript (200) or, for asynchronous models (202), a ticket echoing the run fields.

        Raises:
            PayloadTooLarge: the audio exceeds the direct-upload limit (nothing was sent).
            ProviderError: any HTTP failure, typed by status.
        """
        if len(audio.data) > MAX_DIRECT_UPLOAD:
            raise PayloadTooLarge(
                f"{self.name}: {len(audio.data)} bytes > {MAX_DIRECT_UPLOAD}-byte upload limit",
                provider=self.name,
                request_sent=False,
            )
        caps = self.capabilities(options.model)
        form = aiohttp.FormData()
        form.add_field(
            "audio", audio.data, filename=audio.filename, content_type=audio.content_type
        )
        form.add_field("model", options.model)
        form.add_field("language", options.language or "auto")
        form.add_field("actualDuration", _minutes(audio.duration))
        if options.diarize and caps.diarization:
            form.add_field("diarize", "true")
        answer = await self._call("POST", "transcribe", data=form)
        body = answer.json_object()
        if "runId" in body and "transcription" not in body:
            return _stt_ticket(self.name, body, audio, options)
        return _parse_transcript(answer, body)

    async def poll(self, ticket: Ticket) -> PollResult:
        """Ask ``/transcribe/status`` about an asynchronous run, echoing the ticket's fields.

        Raises:
            UnknownJob: NanoGPT does not know the run (404).
            ProviderError: any other HTTP failure, typed by status.
        """
        data = ticket.data
        echo = {
            "runId": data["runId"],
            "cost": data.get("cost"),
            "paymentSource": data.get("paymentSource"),
            "isApiRequest": True,
            "fileName": data.get("fileName"),
            "fileSize": data.get("fileSize"),
            "chargedDuration": data.get("chargedDuration"),
            "diarize": data.get("diarize", False),
        }
        answer = await self._call("POST", "transcribe/status", json=echo)
        body = answer.json_object()
        status = body.get("status")
        if status == "pending":
            return PollResult(PollStatus.PENDING)
        if status == "processing":
            return PollResult(PollStatus.RUNNING)
        if status == "completed":
            transcript = _parse_transcript(answer, body)
            return PollResult(PollStatus.COMPLETED, transcript=transcript, cost=transcript.cost)
        if status in ("failed", "error"):
            _LOGGER.warning("nanogpt run %s failed: %s", data["runId"], body.get("error"))
            return PollResult(
                PollStatus.FAILED,
                error=ProviderJobFailed.default_message.id,
                error_code=str_or_none(body.get("code")) or "failed",
            )
        raise malformed(answer, f"unknown status {status!r}")


class NanoGptTextToSpeech(_NanoGptClient):
    """NanoGPT ``/tts``: synchronous models answer with audio, Elevenlabs models with a run."""

    def capabilities(self, model: str) -> TtsCapabilities:
        """Return what ``model`` supports; unknown models are synchronous with 4096 characters."""
        asynchronous = model in _ASYNC_TTS_MODELS
        return TtsCapabilities(
            asynchronous=asynchronous,
            max_chars=_TTS_MAX_CHARS.get(model, _DEFAULT_TTS_MAX_CHARS),
            # The docs poll asynchronous TTS every 2-3 s.
            min_poll_interval=2.0 if asynchronous else 0.0,
        )

    async def submit(self, text: str, options: TtsOptions) -> SpeechAudio | Ticket:
        """Ask for speech.

        Returns:
            The audio (binary answer, or JSON ``audioUrl`` downloaded) or a ticket (202).

        Raises:
            ProviderError: any HTTP failure, typed by status.
        """
        payload = {
            "text": text,
            "model": options.model,
            "voice": options.voice,
            "speed": options.speed,
        }
        answer = await self._call("POST", "tts", json=payload)
        if answer.content_type.startswith("audio/") or answer.content_type in (
            "application/octet-stream",
            "application/ogg",
        ):
            if not answer.body:
                raise malformed(answer, "empty audio")
            return SpeechAudio(answer.body, answer.content_type)
        body = answer.json_object()
        if "runId" in body and "audioUrl" not in body:
            return _tts_ticket(self.name, body, options)
        url = body.get("audioUrl")
        if not isinstance(url, str) or not url:
            raise malformed(answer, "neither audio, audioUrl nor runId")
        content_type = str_or_none(body.get("contentType"))
        try:
            return await self._download(url, content_type)
        except ProviderError as exc:
            # The synthesis is done and paid for: keep the URL and retry the download (durably,
            # through the poller), never the synthesis.
            _LOGGER.warning("%s: audio download failed, will retry it: %s", self.name, exc)
            return _download_ticket(self.name, url, content_type, body, options)

    async def poll(self, ticket: Ticket) -> PollResult:
        """Ask ``/tts/status`` about a run, or retry a pending download; COMPLETED carries the
        downloaded audio.

        Raises:
            ProviderError: any HTTP failure, typed by status (a failed download included).
        """
        data = ticket.data
        if data.get("download"):
            audio = await self._download(
                str(data["audioUrl"]), str_or_none(data.get("contentType"))
            )
            return PollResult(
                PollStatus.COMPLETED, audio=audio, cost=float_or_none(data.get("cost"))
            )
        params = {
            key: str(data[key])
            for key in ("runId", "model", "cost", "paymentSource")
            if data.get(key) is not None
        }
        params["isApiRequest"] = "true"
        answer = await self._call("GET", "tts/status", params=params)
        body = answer.json_object()
        status = body.get("status")
        if status == "pending":
            return PollResult(
                PollStatus.PENDING, queue_position=int_or_none(body.get("queuePosition"))
            )
        if status == "processing":
            return PollResult(PollStatus.RUNNING)
        if status == "completed":
            url = body.get("audioUrl")
            if not isinstance(url, str) or not url:
                raise malformed(answer, "completed without audioUrl")
            audio = await self._download(url, str_or_none(body.get("contentType")))
            return PollResult(
                PollStatus.COMPLETED, audio=audio, cost=float_or_none(data.get("cost"))
            )
        if status in ("error", "failed"):
            return _tts_failure(data, body)
        raise malformed(answer, f"unknown status {status!r}")


def _tts_failure(data: Mapping[str, Any], body: Mapping[str, Any]) -> PollResult:
    code = str_or_none(body.get("code"))
    _LOGGER.warning(
        "nanogpt tts run %s failed (%s): %s", data.get("runId"), code, body.get("error")
    )
    if code == _CONTENT_POLICY:
        return PollResult(
            PollStatus.FAILED,
            error=ContentPolicyViolation.default_message.id,
            error_code=_CONTENT_POLICY,
        )
    return PollResult(
        PollStatus.FAILED, error=ProviderJobFailed.default_message.id, error_code=code or "failed"
    )


def _download_ticket(
    name: str,
    url: str,
    content_type: str | None,
    body: Mapping[str, Any],
    options: TtsOptions,
) -> Ticket:
    """A synchronous answer whose audio is not fetched yet: polling it retries the download."""
    data = {
        "kind": "tts",
        "download": True,
        "audioUrl": url,
        "contentType": content_type,
        "model": body.get("model", options.model),
        "cost": body.get("cost"),
    }
    return Ticket(provider=name, data=data, cost=float_or_none(body.get("cost")))


def _stt_ticket(
    name: str, body: Mapping[str, Any], audio: AudioInput, options: SttOptions
) -> Ticket:
    """Keep every field the status call echoes; fall back to what we sent when the 202 omits one."""
    cost = float_or_none(body.get("cost"))
    data = {
        "kind": "stt",
        "runId": str(body["runId"]),
        "model": body.get("model", options.model),
        "cost": body.get("cost"),
        "paymentSource": body.get("paymentSource"),
        "fileName": body.get("fileName", audio.filename),
        "fileSize": body.get("fileSize", len(audio.data)),
        "chargedDuration": body.get("chargedDuration", float(_minutes(audio.duration))),
        "diarize": bool(body.get("diarize", options.diarize)),
    }
    return Ticket(provider=name, data=data, cost=cost)


def _tts_ticket(name: str, body: Mapping[str, Any], options: TtsOptions) -> Ticket:
    data = {
        "kind": "tts",
        "runId": str(body["runId"]),
        "model": body.get("model", options.model),
        "cost": body.get("cost"),
        "paymentSource": body.get("paymentSource"),
    }
    return Ticket(
        provider=name,
        data=data,
        cost=float_or_none(body.get("cost")),
        queue_position=int_or_none(body.get("queuePosition")),
    )


def _parse_transcript(answer: HttpAnswer, body: Mapping[str, Any]) -> Transcript:
    text = body.get("transcription")
    if not isinstance(text, str):
        raise malformed(answer, "no transcription text")
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    words = _parse_words(body.get("words"))
    segments = _diarization_segments(body.get("diarization")) or _segments_from_words(words)
    minutes = float_or_none(meta.get("actualDuration"))
    return Transcript(
        text=text.strip(),
        segments=segments,
        words=words,
        language=str_or_none(meta.get("language")),
        # metadata.actualDuration is in minutes, like the form field we send; Transcript wants s.
        duration=minutes * 60 if minutes is not None else None,
        cost=float_or_none(meta.get("cost")),
        currency=str_or_none(meta.get("currency")),
        diarized=any(s.speaker for s in segments) or any(w.speaker for w in words),
    )


def _parse_words(raw: Any) -> tuple[Word, ...]:
    """Words and audio events from Elevenlabs' ``words``; ``spacing`` tokens carry nothing."""
    if not isinstance(raw, list):
        return ()
    words = []
    for item in raw:
        if not isinstance(item, Mapping) or item.get("type") == "spacing":
            continue
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        words.append(
            Word(
                text=text,
                start=float_or_none(item.get("start")),
                end=float_or_none(item.get("end")),
                speaker=str_or_none(item.get("speaker_id")),
                type=str_or_none(item.get("type")) or "word",
            )
        )
    return tuple(words)


def _diarization_segments(raw: Any) -> tuple[Segment, ...]:
    """The ``segments`` of NanoGPT's ``diarization`` block (OpenAI's segment shape)."""
    return segments_or_empty(raw.get("segments") if isinstance(raw, Mapping) else None)


def _segments_from_words(words: tuple[Word, ...]) -> tuple[Segment, ...]:
    """Group consecutive words by speaker when the answer has words but no diarization block."""
    groups: list[list[Word]] = []
    for word in words:
        if word.speaker is None:
            continue
        if groups and groups[-1][0].speaker == word.speaker:
            groups[-1].append(word)
        else:
            groups.append([word])
    return tuple(
        Segment(" ".join(w.text for w in g), g[0].start, g[-1].end, g[0].speaker) for g in groups
    )
