"""The tables SQLite and PostgreSQL create alike, written once with each backend's column types."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from string import Template

_LOGGER = logging.getLogger(__name__)

# How each backend spells a type the other spells differently. ``$`` marks them in the tables
# below (string.Template), since the SQL itself holds ``{}`` (empty JSON defaults).
SQLITE: Mapping[str, str] = {"real": "REAL", "bigint": "INTEGER", "blob": "BLOB"}
POSTGRES: Mapping[str, str] = {"real": "DOUBLE PRECISION", "bigint": "BIGINT", "blob": "BYTEA"}

# The columns of the first schema; later ones are added by migrations (PostgreSQL started later,
# with the lease columns: see postgres_schema).
_JOBS = """CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        reply_to TEXT,
        thread_id TEXT,
        origin_extra TEXT NOT NULL DEFAULT '{}',
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        ticket TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        poll_count INTEGER NOT NULL DEFAULT 0,
        next_poll_at $real,
        deadline_at $real NOT NULL,
        queue_position INTEGER,
        result TEXT,
        error TEXT,
        error_code TEXT,
        cost $real,
        currency TEXT,
        input_duration $real,
        input_bytes $bigint,
        dedup_key TEXT,
        progress_message_id TEXT,
        created_at $real NOT NULL,
        updated_at $real NOT NULL,
        submitted_at $real,
        completed_at $real,
        delivered_at $real,
        delivery_message_id TEXT,
        delivery_error TEXT,
        delivery_attempts INTEGER NOT NULL DEFAULT 0,
        deliver_after $real,
        extra TEXT NOT NULL DEFAULT '{}'$later
    );"""

_JOB_BLOBS = """CREATE TABLE job_blobs (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        data $blob NOT NULL,
        filename TEXT,
        content_type TEXT,
        PRIMARY KEY (job_id, role)
    );"""

# A chat's settings, and (later) a person's own, which win over the chat's.
_SETTINGS = """CREATE TABLE ${owner}_settings (
        platform TEXT NOT NULL,
        ${owner}_id TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at $real NOT NULL,
        PRIMARY KEY (platform, ${owner}_id)
    );"""

_USAGE_DAILY = """CREATE TABLE usage_daily (
        day $real NOT NULL,
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        jobs $bigint NOT NULL DEFAULT 0,
        audio_seconds $real NOT NULL DEFAULT 0,
        chars $bigint NOT NULL DEFAULT 0,
        cost $real NOT NULL DEFAULT 0,
        currency TEXT,
        PRIMARY KEY (day, platform, chat_id, user_id)
    );"""

_JOB_PARTS = """CREATE TABLE job_parts (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        audio_start $real NOT NULL,
        audio_seconds $real NOT NULL,
        state TEXT NOT NULL,
        ticket TEXT,
        result TEXT,
        error TEXT,
        cost $real,
        currency TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        keep_input INTEGER NOT NULL DEFAULT 0,
        updated_at $real NOT NULL,
        data $blob,
        filename TEXT,
        content_type TEXT,
        PRIMARY KEY (job_id, idx)
    );"""

# At most one live job per ``unique_key`` (summaries and translations: see sqlite_schema v11).
UNIQUE_KEY = """
    ALTER TABLE jobs ADD COLUMN unique_key TEXT;
    CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key) WHERE unique_key IS NOT NULL;
    """


def script(*statements: str) -> str:
    """A migration made of ``statements`` alone, laid out as the hand-written ones are."""
    return "\n    " + "\n    ".join(statements) + "\n    "


def jobs(types: Mapping[str, str], later: str = "") -> str:
    """The ``jobs`` table, with ``later`` columns (already typed) appended to the first ones."""
    return Template(_JOBS).substitute(types, later=later)


def job_blobs(types: Mapping[str, str]) -> str:
    """Input audio (kept only until the provider has it) and output audio (voice clips)."""
    return Template(_JOB_BLOBS).substitute(types)


def settings(types: Mapping[str, str], owner: str) -> str:
    """The settings table of ``owner`` (``chat`` or ``user``): one JSON document each."""
    return Template(_SETTINGS).substitute(types, owner=owner)


def usage_daily(types: Mapping[str, str]) -> str:
    """The /usage rollup: the jobs table's sums per UTC day of creation and person."""
    return Template(_USAGE_DAILY).substitute(types)


def job_parts(types: Mapping[str, str]) -> str:
    """The parts a long recording is split into, each a durable sub-job of its ``jobs`` row."""
    return Template(_JOB_PARTS).substitute(types)
