"""Plain data shared by core and adapters: transcripts, audio, options, where a job came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised token with timings (seconds) and, when diarized, its speaker."""

    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    type: str = "word"


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech, optionally attributed to a speaker, with timings when known."""

    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A finished transcription as the provider reported it."""

    text: str
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = ()
    language: str | None = None
    duration: float | None = None
    cost: float | None = None
    currency: str | None = None
    diarized: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (the job store keeps transcripts as JSON)."""
        return {
            "text": self.text,
            "segments": [
                {"text": s.text, "start": s.start, "end": s.end, "speaker": s.speaker}
                for s in self.segments
            ],
            "words": [
                {
                    "text": w.text,
                    "start": w.start,
                    "end": w.end,
                    "speaker": w.speaker,
                    "type": w.type,
                }
                for w in self.words
            ],
            "language": self.language,
            "duration": self.duration,
            "cost": self.cost,
            "currency": self.currency,
            "diarized": self.diarized,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transcript:
        """Inverse of :meth:`to_dict`."""
        return cls(
            text=str(data.get("text", "")),
            segments=tuple(Segment(**s) for s in data.get("segments", ())),
            words=tuple(Word(**w) for w in data.get("words", ())),
            language=data.get("language"),
            duration=data.get("duration"),
            cost=data.get("cost"),
            currency=data.get("currency"),
            diarized=bool(data.get("diarized", False)),
        )


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Synthesised audio exactly as a provider returned it (any container)."""

    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class VoiceClip:
    """Audio ready to post as a voice message: OGG/Opus mono plus what platforms display."""

    ogg: bytes
    duration: float
    waveform: bytes  # Discord's format: one byte (0-255 amplitude) per >= 100 ms, at most 256 bytes


@dataclass(frozen=True, slots=True)
class AudioInput:
    """Audio to transcribe, already probed: bytes, a file name, its MIME type and duration (s)."""

    data: bytes
    filename: str
    content_type: str
    duration: float


@dataclass(frozen=True, slots=True)
class SttOptions:
    """What to ask a speech-to-text model for."""

    model: str
    language: str = "auto"
    diarize: bool = False
    timestamps: bool = True
    context: str | None = None
    translate: bool = False
    """The speech in English whatever language is spoken (Whisper's own ``translate`` task);
    only asked of a model whose capabilities say ``translates_to_english``."""


@dataclass(frozen=True, slots=True)
class TtsOptions:
    """What to ask a text-to-speech model for."""

    model: str
    voice: str
    speed: float = 1.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a job came from: enough to reply to the right message after a restart.

    ``extra`` holds platform data the adapter needs later (e.g. a Discord interaction token and its
    expiry); it must be JSON-serialisable.
    """

    platform: str
    chat_id: str
    user_id: str
    reply_to: str | None = None
    thread_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def locale(self) -> str | None:
        """The requester's language tag: the client's (Telegram ``language_code``, Discord
        ``locale``) until a job is created, then the resolved interface language, so a reply
        delivered later or after a restart is in the language of the person who asked."""
        value = self.extra.get("locale")
        return str(value) if value else None

    @property
    def placeholder_id(self) -> str | None:
        """The "working on it" message the adapter sent before the job was created, which
        progress edits and the reply replaces (``extra["placeholder_id"]``), if any."""
        value = self.extra.get("placeholder_id")
        return str(value) if value else None

    @property
    def settings_chat(self) -> str:
        """The chat id its settings are stored under: ``chat_id`` unless the platform keeps them
        wider (Discord: one set per server, ``extra["settings_chat"]``)."""
        value = self.extra.get("settings_chat")
        return str(value) if value else self.chat_id
