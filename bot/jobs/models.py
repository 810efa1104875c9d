"""Job records: kinds, states and the immutable Job row the store hands out."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.models import Origin, Transcript


class JobKind(StrEnum):
    """What a job does."""

    STT = "stt"
    """Speech to text: audio in, transcript out."""
    TTS = "tts"
    """Text to speech: text in, a voice clip out."""


class JobState(StrEnum):
    """Where a job is; transitions only forward, each one a single guarded transaction."""

    QUEUED = "queued"
    """Stored with its input; not sent to the provider yet (safe to send after a restart)."""
    SUBMITTING = "submitting"
    """The request is on its way; a crash here is ambiguous (the provider may have charged)."""
    SUBMITTED = "submitted"
    """The provider acknowledged it; its ticket is stored and the poller asks until done."""
    COMPLETED = "completed"
    """The result is stored; delivery is tracked separately by ``delivered_at``."""
    FAILED = "failed"
    """Ended without a result; ``error`` holds the sentence shown to the user."""
    CANCELLED = "cancelled"
    """Stopped by its user (or a chat admin); final like FAILED, never sent or polled again."""

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change (only its delivery can)."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


ACTIVE_STATES = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED)


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the ``jobs`` table."""

    id: str
    kind: JobKind
    origin: Origin
    provider: str
    model: str
    options: Mapping[str, Any]
    state: JobState
    created_at: float
    updated_at: float
    deadline_at: float
    ticket: Mapping[str, Any] | None = None
    attempts: int = 0
    poll_count: int = 0
    next_poll_at: float | None = None
    queue_position: int | None = None
    result: Mapping[str, Any] | None = None
    error: str | None = None
    error_code: str | None = None
    cost: float | None = None
    currency: str | None = None
    input_duration: float | None = None
    input_bytes: int | None = None
    dedup_key: str | None = None
    progress_message_id: str | None = None
    progress: float | None = None
    """Share of the work done (0-1) as the provider last reported it while running."""
    submitted_at: float | None = None
    completed_at: float | None = None
    delivered_at: float | None = None
    delivery_message_id: str | None = None
    delivery_error: str | None = None
    delivery_attempts: int = 0
    deliver_after: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def transcript(self) -> Transcript | None:
        """The transcript of a completed speech-to-text job."""
        if self.kind is JobKind.STT and self.result is not None:
            return Transcript.from_dict(self.result)
        return None

    @property
    def clip_duration(self) -> float | None:
        """Seconds of synthesised audio for a completed text-to-speech job."""
        if self.kind is JobKind.TTS and self.result is not None:
            return float(self.result.get("duration", 0.0))
        return None

    @property
    def waveform(self) -> bytes | None:
        """Discord waveform bytes of a completed text-to-speech job."""
        if self.kind is JobKind.TTS and self.result is not None:
            return base64.b64decode(self.result.get("waveform", ""))
        return None

    @property
    def delivered(self) -> bool:
        """True once a reply was accepted by the platform (or given up as undeliverable)."""
        return self.delivered_at is not None or self.delivery_error is not None
