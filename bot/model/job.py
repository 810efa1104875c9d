"""Job records: kinds, states and the immutable Job row the store hands out."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.model.speech import Origin, Transcript


class JobKind(StrEnum):
    """What a job does."""

    STT = "stt"
    """Speech to text: audio in, transcript out."""
    TTS = "tts"
    """Text to speech: text in, a voice clip out."""
    TEXT = "text"
    """A chat model's text from a finished transcript: a summary or a translation."""


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
    """Stopped by its user (or a chat admin) before it finished; final, never polled or
    delivered again."""

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change (only its delivery can)."""
        return self in FINAL_STATES


ACTIVE_STATES = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED)
"""Unfinished: a step (submit or poll) is still to run, or is running."""
DUE_STATES = (JobState.QUEUED, JobState.SUBMITTED)
"""Waiting for a step the poller starts when ``next_poll_at`` comes."""
REPLY_STATES = (JobState.COMPLETED, JobState.FAILED)
"""Finished with a reply to deliver (a cancelled job was answered when it was cancelled)."""
FINAL_STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
"""Can no longer change."""


@dataclass(frozen=True, slots=True)
class Blob:
    """Audio kept beside a job: the input until the provider has it, or the output clip."""

    data: bytes
    filename: str | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class Started:
    """A job just moved to SUBMITTING, with its input audio read in the same statement."""

    job: Job
    input: Blob | None


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a caller supplies to create a job; the store adds id, state and timestamps."""

    kind: JobKind
    origin: Origin
    provider: str
    model: str
    options: Mapping[str, Any]
    deadline_at: float
    input_duration: float | None = None
    dedup_key: str | None = None
    unique_key: str | None = None
    """At most one live job per key (see :meth:`bot.storage.jobs.SqlJobStore.create`)."""
    id: str | None = None
    """The id to store it under, drawn by :func:`new_job_id` before the job exists (an
    adapter shows it in the placeholder it sends first); None: the store draws one. Taken
    by another job already, the store draws another."""


def new_job_id() -> str:
    """A fresh job id: six characters people can type into /status (no 0/o/1/l/i)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True, slots=True)
class NewPart:
    """One piece of a long recording, cut at a silence, to store with its parent job."""

    start: float
    """Where the part begins in the recording (seconds)."""
    duration: float
    blob: Blob
    result: Mapping[str, Any] | None = None
    """Already done (reused from an earlier, failed run of the same job): stored COMPLETED."""


@dataclass(frozen=True, slots=True)
class Part:
    """One row of ``job_parts``: a durable sub-job of a long recording's job. Its state moves
    like a job's (queued, submitting, submitted, completed, failed), under the parent's lease."""

    job_id: str
    index: int
    start: float
    duration: float
    state: JobState
    ticket: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    error: str | None = None
    cost: float | None = None
    currency: str | None = None
    attempts: int = 0
    keep_input: bool = False
    updated_at: float = 0.0

    @property
    def transcript(self) -> Transcript | None:
        """The part's transcript once completed (timings relative to the part's start)."""
        return Transcript.from_dict(self.result) if self.result is not None else None


@dataclass(frozen=True, slots=True)
class Admission:
    """Limits a new job must pass, checked in the transaction that creates it: the store reads
    the :class:`Activity` over this window and calls ``check``, which raises to refuse."""

    started_since: float
    day: float
    check: Callable[[Activity], None]
    seen: Activity | None = None
    """What the service read before (outside the transaction), when it did: a store that runs
    the check and the insert in one round trip inserts only while it still reads the same."""


@dataclass(frozen=True, slots=True)
class Activity:
    """A user's and a chat's recent use, as the limits count it (reused results are free)."""

    started: int  # paid jobs the user started since ``started_since``
    user_active: int  # unfinished jobs of the user (any chat)
    chat_active: int  # unfinished jobs in the chat
    user_seconds: float  # audio seconds the user sent since ``day``
    user_chars: int  # /speak characters the user sent since ``day``
    chat_seconds: float
    chat_chars: int


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
    lease_owner: str | None = None
    lease_until: float | None = None
    unique_key: str | None = None

    @property
    def transcript(self) -> Transcript | None:
        """The transcript of a completed speech-to-text job (the text of a summary or
        translation, which is delivered the same way)."""
        if self.kind in (JobKind.STT, JobKind.TEXT) and self.result is not None:
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
    def placeholder_id(self) -> str | None:
        """The chat message showing this job's progress: sent before the job was created, so
        its id came in the origin (``placeholder_id``); rows from before kept it apart."""
        return self.origin.placeholder_id or self.progress_message_id

    @property
    def delivered(self) -> bool:
        """True once a reply was accepted by the platform (or given up as undeliverable)."""
        return self.delivered_at is not None or self.delivery_error is not None
