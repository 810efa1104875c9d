"""OpenAI-compatible speech (/audio/transcriptions, /audio/speech) on any base URL: shapes only."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from bot.model.errors import EndpointNotFound, ProviderBadRequest, UnknownJob, UnknownModel
from bot.model.speech import AudioInput, SpeechAudio, SttOptions, Transcript, TtsOptions, Word
from bot.providers.base import (
    PollResult,
    SttCapabilities,
    Ticket,
    TtsCapabilities,
    refuse_oversize,
)
from bot.providers.chat import chat_endpoint
from bot.providers.http import HttpAnswer, HttpEndpoint, malformed
from bot.providers.values import float_or_none, segments_or_empty, str_or_none
from bot.text import msg

if TYPE_CHECKING:
    from bot.providers.registry import BuildContext, Built, ProviderConfig

_LOGGER = logging.getLogger(__name__)

FORMATS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"})
"""Containers the OpenAI docs list for /audio/transcriptions (Telegram's OGG/Opus goes as is)."""
JSON_ONLY_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
"""OpenAI docs: these (and their dated snapshots) answer only ``json``/``text``, no timings."""
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"}
    | {"verse", "marin", "cedar"}
)
_AUDIO_TYPES = ("audio/", "application/octet-stream", "application/ogg")
_SPEED_RANGE = (0.25, 4.0)
"""The speed range /audio/speech documents."""


@dataclass(frozen=True, slots=True)
class OpenAiSettings:
    """Per-instance knobs read by the registry from the instance's config section."""

    max_upload_bytes: int = 25 * 1024 * 1024
    max_chars: int = 4096
    voices: frozenset[str] = frozenset()
    instructions: str | None = None
    speech_format: str = "opus"
    """``response_format`` asked of /audio/speech (some servers only make wav or mp3)."""
    timestamps: bool = True
    diarize_models: frozenset[str] = frozenset({"gpt-4o-transcribe-diarize"})


def build(config: ProviderConfig, context: BuildContext) -> Built:
    """Registry factory: both roles over the shared transport, with a bearer key when set."""
    from bot.providers.registry import Built

    key = config.api_key
    endpoint = HttpEndpoint(
        context.http,
        config.name,
        (config.base_url or "").rstrip("/"),
        config.timeout,
        headers={"Authorization": f"Bearer {key}"} if key else {},
        secrets=(key,) if key else (),
        # A 404 is "no such route" (a wrong base_url, or a server without that role, like
        # faster-whisper-server's bare {"detail": "Not Found"} on /audio/speech) unless the
        # answer is about a model (OpenAI's code model_not_found): see http.py.
        statuses={404: EndpointNotFound},
    )
    s = config.settings
    voices: Sequence[str] = s.get("voices") or ()
    if not voices and urlsplit(config.base_url or "").hostname == "api.openai.com":
        voices = sorted(OPENAI_VOICES)
    default = OpenAiSettings()
    settings = OpenAiSettings(
        max_upload_bytes=int(s.get("max_upload_bytes") or default.max_upload_bytes),
        max_chars=int(s.get("max_chars") or default.max_chars),
        voices=frozenset(voices),
        instructions=s.get("instructions") or None,
        speech_format=str(s.get("speech_format") or default.speech_format),
        timestamps=bool(s.get("timestamps", True)),
        diarize_models=frozenset(s.get("diarize_models") or ()),
    )
    chat = chat_endpoint(context.http, config.name, config.base_url or "", key, config.timeout)
    return Built(
        stt=OpenAiSpeechToText(endpoint, settings),
        tts=OpenAiTextToSpeech(endpoint, settings),
        llm=chat,
    )


class OpenAiSpeechToText:
    """``POST /audio/transcriptions``: synchronous; timings via ``verbose_json`` where offered."""

    def __init__(self, http: HttpEndpoint, settings: OpenAiSettings | None = None) -> None:
        self.name = http.provider
        self._http = http
        self._settings = settings or OpenAiSettings()
        self._no_verbose: set[str] = set()
        """Models this server refused ``verbose_json`` for (learned; lasts until restart)."""

    def capabilities(self, model: str) -> SttCapabilities:
        """What ``model`` supports on this instance (every model is synchronous)."""
        return SttCapabilities(
            asynchronous=False,
            diarization=model in self._settings.diarize_models,
            timestamps=self._response_format(model, diarize=False) == "verbose_json",
            formats=FORMATS,
            max_upload_bytes=self._settings.max_upload_bytes,
        )

    def _response_format(self, model: str, *, diarize: bool) -> str:
        if model in self._settings.diarize_models:
            return "diarized_json" if diarize else "json"
        if (
            not self._settings.timestamps
            or model in self._no_verbose
            or model.startswith(JSON_ONLY_MODELS)
        ):
            return "json"
        return "verbose_json"

    async def submit(self, audio: AudioInput, options: SttOptions) -> Transcript:
        """Upload ``audio`` and return its transcript.

        Falls back to ``json`` (no timings) when the server or model refuses ``verbose_json``.

        Raises:
            PayloadTooLarge: over the instance's upload limit (nothing was sent).
            UnknownModel: the server does not know ``options.model``.
            ProviderError: any other HTTP failure, typed by status.
        """
        refuse_oversize(self.name, audio, self._settings.max_upload_bytes)
        fmt = self._response_format(options.model, diarize=options.diarize)
        try:
            answer = await self._transcribe(audio, options, fmt)
        except ProviderBadRequest as exc:
            if fmt != "verbose_json" or not _refuses_verbose(exc):
                raise
            _LOGGER.warning(
                "%s: model %s refused verbose_json; using json (no timings, so no .srt/.vtt): %s",
                self.name,
                options.model,
                exc,
            )
            self._no_verbose.add(options.model)
            fmt = "json"
            answer = await self._transcribe(audio, options, fmt)
        return _parse_transcript(answer, fmt)

    async def _transcribe(self, audio: AudioInput, options: SttOptions, fmt: str) -> HttpAnswer:
        form = aiohttp.FormData()
        form.add_field("file", audio.data, filename=audio.filename, content_type=audio.content_type)
        form.add_field("model", options.model)
        form.add_field("response_format", fmt)
        if options.language and options.language != "auto":
            form.add_field("language", options.language)
        if fmt == "verbose_json":
            for granularity in ("segment", "word"):
                form.add_field("timestamp_granularities[]", granularity)
        if fmt == "diarized_json":
            # Required by the docs for inputs over 30 s; harmless for shorter ones.
            form.add_field("chunking_strategy", "auto")
        try:
            return await self._http.call("POST", "audio/transcriptions", data=form)
        except UnknownModel as exc:
            raise _named(exc, options.model) from exc

    async def poll(self, ticket: Ticket) -> PollResult:
        """Never needed: transcriptions answer synchronously.

        Raises:
            UnknownJob: always (there is no job to ask about).
        """
        raise UnknownJob(f"{self.name}: transcriptions are synchronous", provider=self.name)


class OpenAiTextToSpeech:
    """``POST /audio/speech``: JSON in, audio bytes (Opus unless configured) out."""

    def __init__(self, http: HttpEndpoint, settings: OpenAiSettings | None = None) -> None:
        self.name = http.provider
        self._http = http
        self._settings = settings or OpenAiSettings()

    def capabilities(self, model: str) -> TtsCapabilities:
        """Synchronous, up to the instance's ``max_chars`` (OpenAI: 4096) per request."""
        return TtsCapabilities(
            asynchronous=False, max_chars=self._settings.max_chars, voices=self._settings.voices
        )

    async def submit(self, text: str, options: TtsOptions) -> SpeechAudio:
        """Synthesize ``text`` (as Opus unless the instance sets ``speech_format``).

        Raises:
            UnknownModel: the server does not know ``options.model``.
            EndpointNotFound: the server has no /audio/speech (a transcription-only server).
            MalformedAnswer: the answer is not audio (an HTML page, a JSON body...).
            ProviderError: any other HTTP failure, typed by status.
        """
        payload: dict[str, Any] = {
            "model": options.model,
            "input": text,
            "voice": options.voice,
            "response_format": self._settings.speech_format,
            "speed": min(max(options.speed, _SPEED_RANGE[0]), _SPEED_RANGE[1]),
        }
        if self._settings.instructions:
            payload["instructions"] = self._settings.instructions
        try:
            answer = await self._http.call("POST", "audio/speech", json=payload)
        except UnknownModel as exc:
            raise _named(exc, options.model) from exc
        except EndpointNotFound as exc:
            raise _no_speech_route(exc, urlsplit(self._http.url("audio/speech")).path) from exc
        if not answer.content_type.startswith(_AUDIO_TYPES):
            raise malformed(answer, f"{answer.content_type or 'no content type'} instead of audio")
        if not answer.body:
            raise malformed(answer, "empty audio")
        return SpeechAudio(answer.body, answer.content_type)

    async def poll(self, ticket: Ticket) -> PollResult:
        """Never needed: speech answers synchronously.

        Raises:
            UnknownJob: always.
        """
        raise UnknownJob(f"{self.name}: speech is synchronous", provider=self.name)


def _named(exc: UnknownModel, model: str) -> UnknownModel:
    """The same error, with a user sentence that names the model."""
    return UnknownModel(
        str(exc),
        provider=exc.provider,
        status=exc.status,
        user_message=msg(
            "The speech service does not know the model {model}; the operator has been told.",
            model=repr(model),
        ),
    )


def _no_speech_route(exc: EndpointNotFound, path: str) -> EndpointNotFound:
    """The same error, saying what is missing: the model is not the problem, the route is."""
    return EndpointNotFound(
        f"{exc}; this server has no text-to-speech",
        provider=exc.provider,
        status=exc.status,
        user_message=msg("This server has no text-to-speech (POST {route} not found).", route=path),
    )


def _refuses_verbose(exc: ProviderBadRequest) -> bool:
    """A 400/422 that is about the response format (OpenAI names ``param: response_format``;
    self-hosted servers word it their own way)."""
    text = str(exc).lower()
    return any(k in text for k in ("response_format", "verbose_json", "timestamp_granularit"))


def _parse_transcript(answer: HttpAnswer, fmt: str) -> Transcript:
    body = answer.json_object()
    text = body.get("text")
    if not isinstance(text, str):
        raise malformed(answer, "no text")
    segments = segments_or_empty(body.get("segments"))
    words = _words(body.get("words"))
    return Transcript(
        text=text.strip(),
        segments=segments,
        words=words,
        language=str_or_none(body.get("language")),
        duration=float_or_none(body.get("duration")),
        diarized=fmt == "diarized_json" and any(s.speaker for s in segments),
    )


def _words(raw: Any) -> tuple[Word, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        Word(
            text=item["word"],
            start=float_or_none(item.get("start")),
            end=float_or_none(item.get("end")),
        )
        for item in raw
        if isinstance(item, Mapping) and isinstance(item.get("word"), str) and item["word"].strip()
    )
