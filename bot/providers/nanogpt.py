"""NanoGPT speech-to-text (/transcribe) and text-to-speech (/tts): requests and capabilities."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.model.errors import ProviderError, ProviderJobFailed
from bot.model.speech import AudioInput, SpeechAudio, SttOptions, Transcript, TtsOptions
from bot.providers.base import (
    PollResult,
    PollStatus,
    SttCapabilities,
    Ticket,
    TtsCapabilities,
    in_progress,
    refuse_oversize,
)
from bot.providers.chat import chat_endpoint
from bot.providers.http import HttpAnswer, HttpEndpoint, HttpTransport, malformed
from bot.providers.languages import WHISPER_LANGUAGES
from bot.providers.nanogpt_shapes import (
    download_ticket,
    minutes,
    parse_transcript,
    stt_ticket,
    tts_failure,
    tts_status_params,
    tts_ticket,
)
from bot.providers.values import float_or_none, int_or_none, str_or_none

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
_ASYNC_STT = replace(
    _PLAIN_STT,
    asynchronous=True,
    diarization=True,
    timestamps=True,
    # The docs poll every 5 s but state no minimum; 1 s keeps short notes snappy.
    min_poll_interval=1.0,
)
# Whisper-Large-V3 and Wizper (fal's Whisper v3) answer text only: NanoGPT documents no
# timings or speakers for them, so subtitles and diarization are refused before anything is paid.
_WHISPER_STT = replace(_PLAIN_STT, languages=WHISPER_LANGUAGES)
_STT_MODELS: dict[str, SttCapabilities] = {
    "Whisper-Large-V3": _WHISPER_STT,
    "Wizper": _WHISPER_STT,
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
        refuse_oversize(self.name, audio, MAX_DIRECT_UPLOAD)
        caps = self.capabilities(options.model)
        form = aiohttp.FormData()
        form.add_field(
            "audio", audio.data, filename=audio.filename, content_type=audio.content_type
        )
        form.add_field("model", options.model)
        form.add_field("language", options.language or "auto")
        form.add_field("actualDuration", minutes(audio.duration))
        if options.diarize and caps.diarization:
            form.add_field("diarize", "true")
        answer = await self._call("POST", "transcribe", data=form)
        body = answer.json_object()
        if "runId" in body and "transcription" not in body:
            return stt_ticket(self.name, body, audio, options)
        return parse_transcript(answer, body)

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
        running = in_progress(status)
        if running is not None:
            return running
        if status == "completed":
            transcript = parse_transcript(answer, body)
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
            return tts_ticket(self.name, body, options)
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
            return download_ticket(self.name, url, content_type, body, options)

    async def poll(self, ticket: Ticket) -> PollResult:
        """Ask ``/tts/status`` about a run, or retry a pending download; COMPLETED carries the
        downloaded audio.

        Raises:
            ProviderError: any HTTP failure, typed by status (a failed download included).
        """
        data = ticket.data
        if data.get("download"):
            return await self._completed(data["audioUrl"], data)
        answer = await self._call("GET", "tts/status", params=tts_status_params(data))
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
            return await self._completed(url, {**data, "contentType": body.get("contentType")})
        if status in ("error", "failed"):
            return tts_failure(data, body)
        raise malformed(answer, f"unknown status {status!r}")

    async def _completed(self, url: object, data: Mapping[str, Any]) -> PollResult:
        """Download a finished run's audio; the ticket's cost goes with it."""
        audio = await self._download(str(url), str_or_none(data.get("contentType")))
        return PollResult(PollStatus.COMPLETED, audio=audio, cost=float_or_none(data.get("cost")))
