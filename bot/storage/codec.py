"""Row codec: the one serialize/deserialize pair per row type (jobs, blobs, settings, speeds,
usage); a part's row is decoded beside its statements (:func:`bot.storage.parts.part_from_row`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from bot.model.job import Blob, Job, JobKind, JobState, NewJob
from bot.model.speech import Origin

JOB_COLUMNS = (
    "id, kind, platform, chat_id, user_id, reply_to, thread_id, origin_extra, provider, model, "
    "options, state, ticket, attempts, poll_count, next_poll_at, deadline_at, queue_position, "
    "result, error, error_code, cost, currency, input_duration, input_bytes, dedup_key, "
    "progress_message_id, created_at, updated_at, submitted_at, completed_at, delivered_at, "
    "delivery_message_id, delivery_error, delivery_attempts, deliver_after, extra, "
    "lease_owner, lease_until, progress, keep_input, unique_key"
)
_JOB_NAMES = tuple(name.strip() for name in JOB_COLUMNS.split(","))
# Columns stored as they are read (the rest are decoded in job_from_row).
_ORIGIN_PLAIN = ("platform", "chat_id", "user_id", "reply_to", "thread_id")
_JOB_PLAIN = tuple(
    f.name
    for f in dataclasses.fields(Job)
    if f.name in _JOB_NAMES
    and f.name not in {"kind", "options", "state", "ticket", "result", "extra"}
)
NEW_JOB_COLUMNS = (
    "id",
    "kind",
    "platform",
    "chat_id",
    "user_id",
    "reply_to",
    "thread_id",
    "origin_extra",
    "provider",
    "model",
    "options",
    "state",
    "next_poll_at",
    "deadline_at",
    "input_duration",
    "input_bytes",
    "dedup_key",
    "result",
    "created_at",
    "updated_at",
    "completed_at",
    "deliver_after",
    "unique_key",
)
BLOB_COLUMNS = ("job_id", "role", "data", "filename", "content_type")
# What a saved speed fit consists of: the speed_stats columns besides its key.
SPEED_COLUMNS = ("sw", "sx", "sy", "sxx", "sxy", "dev", "samples", "place", "places")
USAGE_KEYS = (
    "platform",
    "chat_id",
    "user_id",
    "jobs",
    "audio_seconds",
    "chars",
    "cost",
    "currency",
)


class Row(Protocol):
    """A database row by column name (``sqlite3.Row`` and ``asyncpg.Record`` both are)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


def dumps(value: Any) -> str | None:
    """JSON text of ``value`` as stored (compact, UTF-8 kept), None for None."""
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _object(text: str) -> dict[str, Any]:
    # Most jobs have no origin extras and no extra state: skip the JSON parser for "{}".
    if text == "{}":
        return {}
    value: dict[str, Any] = json.loads(text)
    return value


def new_job_row(
    job_id: str,
    new: NewJob,
    *,
    now: float,
    state: JobState,
    input_bytes: int | None,
    result: Mapping[str, Any] | None,
) -> tuple[Any, ...]:
    """The values of :data:`NEW_JOB_COLUMNS` for a job being created."""
    o = new.origin
    return (
        job_id,
        new.kind.value,
        o.platform,
        o.chat_id,
        o.user_id,
        o.reply_to,
        o.thread_id,
        dumps(dict(o.extra)),
        new.provider,
        new.model,
        dumps(dict(new.options)),
        state.value,
        now if state is JobState.QUEUED else None,
        new.deadline_at,
        new.input_duration,
        input_bytes,
        new.dedup_key,
        dumps(result),
        now,
        now,
        now if state.terminal else None,
        now,
        new.unique_key,
    )


def job_from_row(row: Row) -> Job:
    """The :class:`Job` of a row selected with :data:`JOB_COLUMNS` first (extra columns after
    them are ignored). The row is read once into a dict: a name lookup in ``sqlite3.Row`` scans
    the column names each time, which made decoding the larger part of a claim of many rows."""
    f = dict(zip(_JOB_NAMES, row, strict=False))
    return Job(
        **{name: f[name] for name in _JOB_PLAIN},
        kind=JobKind(f["kind"]),
        origin=Origin(
            **{name: f[name] for name in _ORIGIN_PLAIN}, extra=_object(f["origin_extra"])
        ),
        options=json.loads(f["options"]),
        state=JobState(f["state"]),
        ticket=_loads(f["ticket"]),
        result=_loads(f["result"]),
        extra=_object(f["extra"]),
    )


def blob_row(job_id: str, role: str, blob: Blob) -> tuple[Any, ...]:
    """The values of :data:`BLOB_COLUMNS`."""
    return (job_id, role, blob.data, blob.filename, blob.content_type)


def blob_from_row(row: Row) -> Blob:
    """A :class:`Blob` from ``data, filename, content_type``."""
    return Blob(bytes(row["data"]), row["filename"], row["content_type"])


def settings_row(data: Mapping[str, Any]) -> str:
    """A chat's settings as stored."""
    return dumps(dict(data)) or "{}"


def settings_from_row(text: str) -> dict[str, Any]:
    """A chat's settings as read."""
    return dict(json.loads(text))


def speed_row(key: tuple[str, str, str], values: Mapping[str, float]) -> tuple[Any, ...]:
    """(provider, model, kind, *SPEED_COLUMNS) of one fit; missing fields are 0."""
    return (*key, *(float(values.get(f, 0.0)) for f in SPEED_COLUMNS))


def speed_from_row(row: Sequence[Any]) -> tuple[tuple[str, str, str], dict[str, float]]:
    """(key, fit fields) of a row selected as provider, model, kind, *SPEED_COLUMNS."""
    key = (str(row[0]), str(row[1]), str(row[2]))
    return key, {f: float(v) for f, v in zip(SPEED_COLUMNS, row[3:], strict=True)}


def usage_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """One /usage row (see :data:`USAGE_KEYS`), numbers as Python numbers."""
    platform, chat, user, jobs, seconds, chars, cost, currency = row
    return dict(
        zip(
            USAGE_KEYS,
            (platform, chat, user, int(jobs), float(seconds), int(chars), float(cost), currency),
            strict=True,
        )
    )
