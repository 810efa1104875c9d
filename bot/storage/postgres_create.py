"""PostgreSQL creates a job in one round trip: one statement takes the limits' advisory locks,
reads the activity they guard, gives a failed holder's unique key up, inserts the row and its
audio and sends the NOTIFY.

The locks, the read and the key's release sit in a server-side function
(``voicebot_admit_<hash>``): a statement's own snapshot is taken before any lock it takes, so a
read in the same statement could miss a job another process committed while we waited; each
statement inside a (volatile) PL/pgSQL function takes a fresh snapshot, so its read comes after
the locks, as the separate statements of a transaction did. The limits themselves stay in Python
(``Admission.check``): the insert (and the key's release) only happen when the activity read
under the locks is the one the caller last checked (the service's own read before it, or this
statement's answer when that differed), so a burst still gets exactly the allowed number of
jobs, across processes too. The function is named by a hash of its body, so every version of
voicebot sharing a database calls the body it was written for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from bot.model.job import Activity, Admission, Blob, JobState
from bot.model.speech import Origin
from bot.storage.codec import BLOB_COLUMNS, JOB_COLUMNS, NEW_JOB_COLUMNS, Row
from bot.storage.database import Dialect, marks, state_in
from bot.storage.usage import activity_sql

_FIGURES = 7  # Activity's fields, in activity_sql's order


def _named(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with each ``?`` replaced by the argument name its sentinel value stands for."""
    names = iter(params)
    return re.sub(r"\?", lambda _: str(next(names)), sql)


def admit_function(dialect: Dialect) -> tuple[str, str]:
    """The function's name and the statement that creates it (idempotent)."""
    activity, params = activity_sql(dialect, "a_platform", "a_user", "a_chat", "a_since", "a_day")
    figures = ", ".join(f"r.f{i}::double precision" for i in range(_FIGURES))
    columns = ", ".join(f"f{i}" for i in range(_FIGURES))
    dead = state_in([JobState.FAILED, JobState.CANCELLED])
    body = f"""
    DECLARE
        k TEXT;
        act DOUBLE PRECISION[];
    BEGIN
        IF a_keys IS NOT NULL THEN
            FOREACH k IN ARRAY a_keys LOOP
                PERFORM pg_advisory_xact_lock(hashtext(k));
            END LOOP;
            SELECT ARRAY[{figures}] INTO act FROM ({_named(activity, params)}) AS r ({columns});
        END IF;
        -- Only for a job about to be inserted: a refused one leaves the key where it was.
        IF a_release IS NOT NULL AND act IS NOT DISTINCT FROM a_expected THEN
            UPDATE jobs SET unique_key = NULL WHERE unique_key = a_release AND {dead};
        END IF;
        RETURN act;
    END"""
    name = "voicebot_admit_" + hashlib.sha256(body.encode()).hexdigest()[:12]
    create = (
        f"CREATE OR REPLACE FUNCTION {name}(a_release TEXT, a_keys TEXT[], a_platform TEXT, "
        "a_user TEXT, a_chat TEXT, a_since DOUBLE PRECISION, a_day DOUBLE PRECISION, "
        "a_expected DOUBLE PRECISION[]) "
        f"RETURNS DOUBLE PRECISION[] LANGUAGE plpgsql VOLATILE AS $fn${body}\n    $fn$"
    )
    return name, create


def create_statement(function: str, roles: Sequence[str], wake: str) -> str:
    """The one statement: the admission, the row (only when the admission read what the caller
    expected), one audio row per role in ``roles`` and ``wake`` (a ``pg_notify`` call), giving
    back the new row (NULLs when nothing was inserted) and the activity read."""
    columns = ", ".join(NEW_JOB_COLUMNS)
    blobs = "".join(
        f", b_{role} AS (INSERT INTO job_blobs ({', '.join(BLOB_COLUMNS)}) "
        f"SELECT ins.id, '{role}', ?::bytea, ?, ? FROM ins)"
        for role in roles
    )
    return (
        f"WITH e AS (SELECT ?::double precision[] AS expected), "
        f"a AS (SELECT {function}(?, ?::text[], ?, ?, ?, ?, ?, e.expected) AS act FROM e), "
        f"ins AS (INSERT INTO jobs ({columns}) SELECT {marks(len(NEW_JOB_COLUMNS))} FROM a, e "
        f"WHERE a.act IS NOT DISTINCT FROM e.expected RETURNING {JOB_COLUMNS})"
        f"{blobs}, w AS (SELECT {wake} FROM ins) "
        "SELECT ins.*, a.act AS admit_act, (SELECT COUNT(*) FROM w) AS woke "
        "FROM a LEFT JOIN ins ON TRUE"
    )


def create_params(
    row: Sequence[Any],
    unique_key: str | None,
    origin: Origin,
    admit: Admission | None,
    expected: Sequence[float] | None,
    blobs: Sequence[Blob],
) -> tuple[Any, ...]:
    """The parameters of :func:`create_statement`, in its order."""
    keys = None
    since = day = 0.0
    if admit is not None:
        p = origin.platform
        keys = sorted((f"u:{p}:{origin.user_id}", f"c:{p}:{origin.chat_id}"))
        since, day = admit.started_since, admit.day
    admission = (unique_key, keys, origin.platform, origin.user_id, origin.chat_id, since, day)
    audio = [v for b in blobs for v in (b.data, b.filename, b.content_type)]
    return (None if expected is None else list(expected), *admission, *row, *audio)


def figures(activity: Activity | None) -> list[float] | None:
    """An activity as the function returns it (to pass as the expected one)."""
    if activity is None:
        return None
    return [
        float(v)
        for v in (
            activity.started,
            activity.user_active,
            activity.chat_active,
            activity.user_seconds,
            activity.user_chars,
            activity.chat_seconds,
            activity.chat_chars,
        )
    ]


def admitted(row: Row) -> bool:
    """Whether the statement inserted the job (else ``admit_act`` holds what it read)."""
    return row["id"] is not None


ADMIT_TRIES = 4  # statements per create before falling back to a transaction


def expected_activity(admit: Admission | None) -> list[float] | None:
    """The activity the insert may go ahead on: what the service read before, when that
    passes every limit (else nothing: the first statement only reads)."""
    if admit is None or admit.seen is None:
        return None
    try:
        admit.check(admit.seen)
    except Exception:  # refused on the earlier read: let a fresh one decide
        return None
    return figures(admit.seen)
