"""SqliteJobStore: the only writer of job rows; every state change is one guarded transaction."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.jobs.models import Job, JobKind, JobState
from bot.jobs.schedule import FIT_FIELDS
from bot.jobs.schema import MIGRATIONS
from bot.models import Origin

_LOGGER = logging.getLogger(__name__)

_COLUMNS = (
    "id, kind, platform, chat_id, user_id, reply_to, thread_id, origin_extra, provider, model, "
    "options, state, ticket, attempts, poll_count, next_poll_at, deadline_at, queue_position, "
    "result, error, error_code, cost, currency, input_duration, input_bytes, dedup_key, "
    "progress_message_id, created_at, updated_at, submitted_at, completed_at, delivered_at, "
    "delivery_message_id, delivery_error, delivery_attempts, deliver_after, extra, progress"
)
# Jobs the poller still has work for: a step to run, or a reply to deliver.
_UNFINISHED = "state IN ('queued', 'submitting', 'submitted')"
_UNDELIVERED = (
    "state IN ('completed', 'failed') AND delivered_at IS NULL AND delivery_error IS NULL"
)
# The wall-clock times of a job still in motion: what a clock step has to move.
_CLOCK_COLUMNS = (
    "created_at",
    "updated_at",
    "submitted_at",
    "completed_at",
    "next_poll_at",
    "deliver_after",
    "deadline_at",
)
_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i: ids are typed by hand in /status


@dataclass(frozen=True, slots=True)
class Blob:
    """Audio kept beside a job: the input until the provider has it, or the output clip."""

    data: bytes
    filename: str | None
    content_type: str | None


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


def _of_platforms(names: Sequence[str], exclude: Sequence[str]) -> str:
    """``+platform IN (names)`` and ``id NOT IN (exclude)``, with placeholders in that order.

    The ``+`` keeps SQLite on the state/time partial indexes rather than ``jobs_user``.
    """
    sql = f"+platform IN ({','.join('?' * len(names))})"
    return sql + (f" AND id NOT IN ({','.join('?' * len(exclude))})" if exclude else "")


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=JobKind(row["kind"]),
        origin=Origin(
            platform=row["platform"],
            chat_id=row["chat_id"],
            user_id=row["user_id"],
            reply_to=row["reply_to"],
            thread_id=row["thread_id"],
            extra=json.loads(row["origin_extra"]),
        ),
        provider=row["provider"],
        model=row["model"],
        options=json.loads(row["options"]),
        state=JobState(row["state"]),
        ticket=json.loads(row["ticket"]) if row["ticket"] else None,
        attempts=row["attempts"],
        poll_count=row["poll_count"],
        next_poll_at=row["next_poll_at"],
        deadline_at=row["deadline_at"],
        queue_position=row["queue_position"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"],
        error_code=row["error_code"],
        cost=row["cost"],
        currency=row["currency"],
        input_duration=row["input_duration"],
        input_bytes=row["input_bytes"],
        dedup_key=row["dedup_key"],
        progress_message_id=row["progress_message_id"],
        progress=row["progress"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        submitted_at=row["submitted_at"],
        completed_at=row["completed_at"],
        delivered_at=row["delivered_at"],
        delivery_message_id=row["delivery_message_id"],
        delivery_error=row["delivery_error"],
        delivery_attempts=row["delivery_attempts"],
        deliver_after=row["deliver_after"],
        extra=json.loads(row["extra"]),
    )


class SqliteJobStore:
    """Durable job records in one SQLite file (WAL), over a single aiosqlite connection.

    Every transition is one guarded statement (its guard in the ``WHERE`` clause), atomic in
    autocommit mode; the schema's ``jobs_drop_input`` trigger deletes the input audio in the same
    statement once a job leaves the queue. The few writes that need two statements go through
    :meth:`_tx` (``BEGIN IMMEDIATE``). One lock serialises everything on the shared connection, so
    no read runs inside another coroutine's open transaction. Each call is one hop to aiosqlite's
    thread where it can be (``execute_fetchall``): the hop, not SQLite, is the cost per step.
    """

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteJobStore:
        """Open (creating with mode 0600 and migrating) the database at ``path``."""
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            # Create it private before SQLite does: transcripts and chat ids are personal data.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only power loss may drop the
        # newest commits, and every transition is safe to replay from an older state.
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db, path)
        await store._migrate()
        return store

    async def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        async with self._lock:
            await self._db.close()

    @property
    def path(self) -> Path:
        """Where the database file lives."""
        return self._path

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self._path}: database schema v{version} is newer than this voicebot "
                f"(v{len(MIGRATIONS)}); upgrade voicebot"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            _LOGGER.info("migrating %s to schema v%d", self._path, target)
            await self._db.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={target};\nCOMMIT;"
            )

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement in autocommit mode (atomic by itself); return the rows changed."""
        async with self._lock:
            cur = await self._db.execute(sql, params)
        return cur.rowcount

    async def _update(self, sql: str, params: Sequence[Any]) -> bool:
        return await self._write(sql, params) > 0

    async def _fetch(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[sqlite3.Row]:
        # Reads take the lock too: on a shared connection they would otherwise run inside
        # another coroutine's open transaction and could see rows it later rolls back.
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[Job]:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM jobs WHERE {where} {tail}", params)
        return [_row_to_job(r) for r in rows]

    # -- creation and lookups -------------------------------------------------------------

    async def create(
        self,
        new: NewJob,
        *,
        now: float,
        input_blob: Blob | None = None,
        state: JobState = JobState.QUEUED,
        result: Mapping[str, Any] | None = None,
        output_blob: Blob | None = None,
    ) -> Job:
        """Insert a job (QUEUED with its input, or already COMPLETED for a reused result)."""
        o = new.origin
        for _ in range(20):
            job_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
            try:
                async with self._tx() as db:
                    await db.execute(
                        "INSERT INTO jobs (id, kind, platform, chat_id, user_id, reply_to, "
                        "thread_id, origin_extra, provider, model, options, state, next_poll_at, "
                        "deadline_at, input_duration, input_bytes, dedup_key, result, "
                        "created_at, updated_at, completed_at, deliver_after) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            job_id,
                            new.kind.value,
                            o.platform,
                            o.chat_id,
                            o.user_id,
                            o.reply_to,
                            o.thread_id,
                            _dumps(dict(o.extra)),
                            new.provider,
                            new.model,
                            _dumps(dict(new.options)),
                            state.value,
                            now if state is JobState.QUEUED else None,
                            new.deadline_at,
                            new.input_duration,
                            len(input_blob.data) if input_blob else None,
                            new.dedup_key,
                            _dumps(result),
                            now,
                            now,
                            now if state.terminal else None,
                            now,
                        ),
                    )
                    for role, blob in (("input", input_blob), ("output", output_blob)):
                        if blob is not None:
                            await db.execute(
                                "INSERT INTO job_blobs (job_id, role, data, filename, "
                                "content_type) VALUES (?,?,?,?,?)",
                                (job_id, role, blob.data, blob.filename, blob.content_type),
                            )
            except sqlite3.IntegrityError:
                continue  # id collision: draw another
            job = await self.get(job_id)
            assert job is not None
            return job
        raise RuntimeError("could not allocate a unique job id")

    async def get(self, job_id: str) -> Job | None:
        """Return the job with this id, or None."""
        jobs = await self._select("id = ?", (job_id,))
        return jobs[0] if jobs else None

    async def find_for_chat(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """Return the job only if it belongs to this chat (chats never see each other's jobs)."""
        jobs = await self._select(
            "id = ? AND platform = ? AND chat_id = ?", (job_id.strip().lower(), platform, chat_id)
        )
        return jobs[0] if jobs else None

    async def recent_for_chat(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """Newest jobs of one chat first."""
        return await self._select(
            "platform = ? AND chat_id = ?",
            (platform, chat_id, max(0, limit)),
            "ORDER BY created_at DESC LIMIT ?",
        )

    async def recent(self, limit: int = 20) -> list[Job]:
        """Newest jobs overall first."""
        return await self._select("1", (max(0, limit),), "ORDER BY created_at DESC LIMIT ?")

    async def job_counts(self) -> list[tuple[str, str, str, int]]:
        """``(state, kind, provider, count)`` over every stored job (for /metrics)."""
        rows = await self._fetch(
            "SELECT state, kind, provider, COUNT(*) FROM jobs GROUP BY state, kind, provider"
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def find_reusable(self, dedup_key: str) -> Job | None:
        """The newest completed job with this dedup key, whose result can be reused for free."""
        jobs = await self._select(
            "dedup_key = ? AND state = 'completed'",
            (dedup_key,),
            "ORDER BY created_at DESC LIMIT 1",
        )
        return jobs[0] if jobs else None

    async def due(
        self,
        now: float | None,
        platforms: Iterable[str],
        limit: int = 100,
        exclude: Sequence[str] = (),
    ) -> list[Job]:
        """Queued or submitted jobs of these platforms whose next step is due at ``now`` (with
        None: the next ones whenever due), soonest first, leaving out the ids in ``exclude``
        (steps already running).

        ``+platform`` keeps SQLite on the partial ``jobs_due`` index (by next poll time) rather
        than scanning every row of a platform through ``jobs_user``.
        """
        return await self._due_select(
            "state IN ('queued', 'submitted')",
            "next_poll_at",
            now,
            platforms,
            limit,
            exclude,
        )

    async def undelivered(
        self,
        now: float | None,
        platforms: Iterable[str],
        limit: int = 100,
        exclude: Sequence[str] = (),
    ) -> list[Job]:
        """Finished jobs of these platforms whose reply is due (as :meth:`due`) and not yet
        accepted."""
        return await self._due_select(
            _UNDELIVERED,
            "deliver_after",
            now,
            platforms,
            limit,
            exclude,
        )

    async def _due_select(
        self,
        where: str,
        order: str,
        now: float | None,
        platforms: Iterable[str],
        limit: int,
        exclude: Sequence[str],
    ) -> list[Job]:
        names = list(platforms)
        if not names or limit <= 0:
            return []
        until = "" if now is None else f" AND {order} <= ?"
        bound = () if now is None else (now,)
        return await self._select(
            f"{where}{until} AND {_of_platforms(names, exclude)}",
            (*bound, *names, *exclude, limit),
            f"ORDER BY {order} LIMIT ?",
        )

    async def next_wakeup(self, platforms: Iterable[str]) -> float | None:
        """The earliest time anything (a poll, a submit, a delivery) becomes due."""
        names = list(platforms)
        marks = ",".join("?" * len(names)) or "NULL"
        sql = (
            "SELECT MIN(t) FROM ("
            "SELECT MIN(next_poll_at) AS t FROM jobs WHERE state IN ('queued', 'submitted') "
            f"AND platform IN ({marks}) "
            f"UNION ALL SELECT MIN(deliver_after) FROM jobs WHERE {_UNDELIVERED} "
            f"AND platform IN ({marks}))"
        )
        rows = await self._fetch(sql, [*names, *names])
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def load_blob(self, job_id: str, role: str) -> Blob | None:
        """Return the ``input`` or ``output`` audio of a job, if still kept."""
        rows = await self._fetch(
            "SELECT data, filename, content_type FROM job_blobs WHERE job_id = ? AND role = ?",
            (job_id, role),
        )
        return Blob(bytes(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    # -- transitions (each one transaction, guarded in its WHERE clause) ------------------

    async def begin_submit(self, job_id: str, now: float) -> bool:
        """QUEUED → SUBMITTING, recorded *before* the request leaves (see README: crash safety)."""
        return await self._update(
            "UPDATE jobs SET state = 'submitting', attempts = attempts + 1, updated_at = ? "
            "WHERE id = ? AND state = 'queued'",
            (now, job_id),
        )

    async def requeue(self, job_id: str, next_at: float, now: float) -> bool:
        """SUBMITTING → QUEUED: only when the provider provably did not take the job."""
        return await self._update(
            "UPDATE jobs SET state = 'queued', next_poll_at = ?, updated_at = ? "
            "WHERE id = ? AND state = 'submitting'",
            (next_at, now, job_id),
        )

    async def mark_submitted(
        self,
        job_id: str,
        ticket: Mapping[str, Any],
        *,
        next_poll_at: float,
        now: float,
        cost: float | None = None,
        queue_position: int | None = None,
        keep_input: bool = False,
    ) -> bool:
        """SUBMITTING → SUBMITTED with the ticket; the input audio is dropped in the same step
        unless ``keep_input`` (a provider that reruns lost jobs for free needs it until the end)."""
        return await self._update(
            "UPDATE jobs SET state = 'submitted', ticket = ?, next_poll_at = ?, cost = ?, "
            "queue_position = ?, submitted_at = ?, updated_at = ?, keep_input = ?, "
            "progress = NULL WHERE id = ? AND state = 'submitting'",
            (
                _dumps(dict(ticket)),
                next_poll_at,
                cost,
                queue_position,
                now,
                now,
                int(keep_input),
                job_id,
            ),
        )

    async def requeue_lost(self, job_id: str, now: float) -> bool:
        """SUBMITTED → QUEUED: the provider lost the run and reruns cost nothing; the kept input
        goes to the provider again."""
        return await self._update(
            "UPDATE jobs SET state = 'queued', ticket = NULL, next_poll_at = ?, "
            "queue_position = NULL, progress = NULL, updated_at = ? "
            "WHERE id = ? AND state = 'submitted' AND keep_input",
            (now, now, job_id),
        )

    async def reschedule(
        self,
        job_id: str,
        *,
        next_poll_at: float,
        now: float,
        queue_position: int | None = None,
        progress: float | None = None,
    ) -> bool:
        """Record one more poll of a SUBMITTED job, its progress (kept when not reported) and
        when to ask next."""
        return await self._update(
            "UPDATE jobs SET next_poll_at = ?, queue_position = ?, poll_count = poll_count + 1, "
            "progress = COALESCE(?, progress), updated_at = ? "
            "WHERE id = ? AND state = 'submitted'",
            (next_poll_at, queue_position, progress, now, job_id),
        )

    async def complete(
        self,
        job_id: str,
        result: Mapping[str, Any],
        *,
        now: float,
        cost: float | None = None,
        currency: str | None = None,
        output_blob: Blob | None = None,
        polled: bool = False,
    ) -> bool:
        """SUBMITTING/SUBMITTED → COMPLETED with the result; input audio dropped."""
        sql = (
            "UPDATE jobs SET state = 'completed', result = ?, cost = COALESCE(?, cost), "
            "currency = COALESCE(?, currency), completed_at = ?, updated_at = ?, "
            "deliver_after = ?, next_poll_at = NULL, poll_count = poll_count + ? "
            "WHERE id = ? AND state IN ('submitting', 'submitted')"
        )
        params = (_dumps(dict(result)), cost, currency, now, now, now, int(polled), job_id)
        if output_blob is None:
            return await self._update(sql, params)
        async with self._tx() as db:  # the clip and the state change land together
            cur = await db.execute(sql, params)
            if cur.rowcount == 0:
                return False
            await db.execute(
                "INSERT OR REPLACE INTO job_blobs (job_id, role, data, filename, content_type) "
                "VALUES (?, 'output', ?, ?, ?)",
                (job_id, output_blob.data, output_blob.filename, output_blob.content_type),
            )
            return True

    async def fail(
        self,
        job_id: str,
        error: str,
        *,
        now: float,
        error_code: str | None = None,
        polled: bool = False,
    ) -> bool:
        """Any unfinished state → FAILED with the user-facing sentence; input audio dropped."""
        return await self._update(
            "UPDATE jobs SET state = 'failed', error = ?, error_code = ?, completed_at = ?, "
            "updated_at = ?, deliver_after = ?, next_poll_at = NULL, "
            "poll_count = poll_count + ? "
            f"WHERE id = ? AND {_UNFINISHED}",
            (error, error_code, now, now, now, int(polled), job_id),
        )

    async def cancel(self, job_id: str, now: float) -> Job | None:
        """QUEUED/SUBMITTING/SUBMITTED → CANCELLED in one guarded statement; input audio dropped.

        Returns the cancelled job, or None when it is unknown or already final. A submit or poll
        that finishes afterwards cannot overwrite it: their guards name the unfinished states.
        """
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE jobs SET state = 'cancelled', error_code = 'cancelled', completed_at = ?, "
                "updated_at = ?, next_poll_at = NULL, deliver_after = NULL "
                f"WHERE id = ? AND {_UNFINISHED}",
                (now, now, job_id),
            )
            if cur.rowcount == 0:
                return None
            rows = list(
                await db.execute_fetchall(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
            )
        return _row_to_job(rows[0])

    async def recover_interrupted(
        self,
        now: float,
        message: str,
        platforms: Iterable[str],
        rerun: Callable[[Job], bool] = lambda job: False,
    ) -> list[str]:
        """Settle every job of these platforms left SUBMITTING by a crash: back to QUEUED when
        ``rerun(job)`` (its provider reruns for free), else FAILED with ``message`` (resubmitting
        could pay twice). Returns the failed ids. Only the process serving a platform may call
        this (another may be mid-submit)."""
        names = list(platforms)
        if not names:
            return []
        marks = ",".join("?" * len(names))
        failed: list[str] = []
        async with self._tx() as db:
            async with db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state = 'submitting' AND platform IN ({marks})",
                names,
            ) as cur:
                jobs = [_row_to_job(row) for row in await cur.fetchall()]
            for job in jobs:
                if rerun(job):
                    await db.execute(
                        "UPDATE jobs SET state = 'queued', next_poll_at = ?, updated_at = ? "
                        "WHERE id = ? AND state = 'submitting'",
                        (now, now, job.id),
                    )
                    continue
                failed.append(job.id)
                await db.execute(
                    "UPDATE jobs SET state = 'failed', error = ?, error_code = 'interrupted', "
                    "completed_at = ?, updated_at = ?, deliver_after = ? "
                    "WHERE id = ? AND state = 'submitting'",
                    (message, now, now, now, job.id),
                )
        return failed

    async def shift_clock(
        self, seconds: float, platforms: Iterable[str], exclude: Sequence[str] = ()
    ) -> int:
        """Move every time of the unfinished or undelivered jobs of these platforms by
        ``seconds``: the wall clock was stepped by that much (NTP, a manual change) and their
        times were written by the old one. Leaves out ``exclude`` (running steps, which write
        new-clock times); returns how many jobs moved."""
        names = list(platforms)
        if not names or not seconds:
            return 0
        moved = ", ".join(f"{column} = {column} + ?" for column in _CLOCK_COLUMNS)
        return await self._write(
            f"UPDATE jobs SET {moved} WHERE ({_UNFINISHED} OR ({_UNDELIVERED})) "
            f"AND {_of_platforms(names, exclude)}",
            (*[seconds] * len(_CLOCK_COLUMNS), *names, *exclude),
        )

    async def mark_delivered(self, job_id: str, message_id: str | None, now: float) -> bool:
        """Record that the platform accepted the reply (once: later calls return False)."""
        return await self._update(
            "UPDATE jobs SET delivered_at = ?, delivery_message_id = ?, updated_at = ? "
            "WHERE id = ? AND delivered_at IS NULL AND state IN ('completed', 'failed')",
            (now, message_id, now, job_id),
        )

    async def defer_delivery(self, job_id: str, deliver_after: float, now: float) -> bool:
        """Try delivering again later (platform rate limit or outage)."""
        return await self._update(
            "UPDATE jobs SET deliver_after = ?, delivery_attempts = delivery_attempts + 1, "
            "updated_at = ? WHERE id = ? AND delivered_at IS NULL",
            (deliver_after, now, job_id),
        )

    async def mark_undeliverable(self, job_id: str, reason: str, now: float) -> bool:
        """Give up delivering (bot blocked, chat gone): never retried again."""
        return await self._update(
            "UPDATE jobs SET delivery_error = ?, updated_at = ? "
            "WHERE id = ? AND delivered_at IS NULL AND delivery_error IS NULL",
            (reason, now, job_id),
        )

    async def set_progress_message(self, job_id: str, message_id: str, now: float) -> bool:
        """Remember the placeholder message the adapter edits as the job moves."""
        return await self._update(
            "UPDATE jobs SET progress_message_id = ?, updated_at = ? WHERE id = ?",
            (message_id, now, job_id),
        )

    async def update_extra(self, job_id: str, extra: Mapping[str, Any], now: float) -> bool:
        """Replace the adapter's per-job notes (e.g. an interaction token's fate)."""
        return await self._update(
            "UPDATE jobs SET extra = ?, updated_at = ? WHERE id = ?",
            (_dumps(dict(extra)), now, job_id),
        )

    # -- chat settings ----------------------------------------------------------------------

    async def get_settings(self, platform: str, chat_id: str) -> dict[str, Any]:
        """The stored settings of a chat (empty when never changed)."""
        rows = await self._fetch(
            "SELECT data FROM chat_settings WHERE platform = ? AND chat_id = ?",
            (platform, chat_id),
        )
        return dict(json.loads(rows[0][0])) if rows else {}

    async def put_settings(
        self, platform: str, chat_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a chat's settings, replacing the previous ones."""
        await self._write(
            "INSERT INTO chat_settings (platform, chat_id, data, updated_at) VALUES (?,?,?,?) "
            "ON CONFLICT (platform, chat_id) DO UPDATE SET data = excluded.data, "
            "updated_at = excluded.updated_at",
            (platform, chat_id, _dumps(dict(data)), now),
        )

    # -- learned provider speed (predictive polling) -------------------------------------------

    async def load_speed_stats(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """Every saved speed fit, keyed by (provider, model, kind)."""
        rows = await self._fetch(
            f"SELECT provider, model, kind, {', '.join(FIT_FIELDS)} FROM speed_stats"
        )
        return {(r[0], r[1], r[2]): dict(zip(FIT_FIELDS, r[3:], strict=True)) for r in rows}

    async def save_speed_stats(
        self, key: tuple[str, str, str], values: Mapping[str, float], now: float
    ) -> None:
        """Insert or replace one speed fit."""
        await self._write(
            f"INSERT OR REPLACE INTO speed_stats (provider, model, kind, "
            f"{', '.join(FIT_FIELDS)}, updated_at) "
            f"VALUES (?,?,?,{'?,' * len(FIT_FIELDS)}?)",
            (*key, *(values[f] for f in FIT_FIELDS), now),
        )

    # -- limits, usage, privacy ---------------------------------------------------------------

    async def activity(
        self, platform: str, user_id: str, chat_id: str, *, started_since: float, day: float
    ) -> Activity:
        """What the limits look at, for one user and chat, in one query (see :class:`Activity`).

        Each part is a subquery on the ``jobs_user`` or ``jobs_chat`` index.
        """
        paid = "json_extract(options, '$.reused_from') IS NULL"
        active = _UNFINISHED
        seconds = "COALESCE(SUM(CASE WHEN kind = 'stt' THEN input_duration END), 0)"
        chars = "COALESCE(SUM(json_extract(options, '$.chars')), 0)"
        user = "FROM jobs WHERE platform = :p AND user_id = :u"
        chat = "FROM jobs WHERE platform = :p AND chat_id = :c"
        parts = (
            f"SELECT COUNT(*) {user} AND created_at >= :started AND {paid}",
            f"SELECT COUNT(*) {user} AND {active}",
            f"SELECT COUNT(*) {chat} AND {active}",
            f"SELECT {seconds} {user} AND created_at >= :day AND {paid}",
            f"SELECT {chars} {user} AND created_at >= :day AND {paid}",
            f"SELECT {seconds} {chat} AND created_at >= :day AND {paid}",
            f"SELECT {chars} {chat} AND created_at >= :day AND {paid}",
        )
        params = {"p": platform, "u": user_id, "c": chat_id, "started": started_since, "day": day}
        [row] = await self._fetch("SELECT " + ", ".join(f"({q})" for q in parts), params)
        return Activity(
            started=int(row[0]),
            user_active=int(row[1]),
            chat_active=int(row[2]),
            user_seconds=float(row[3]),
            user_chars=int(row[4]),
            chat_seconds=float(row[5]),
            chat_chars=int(row[6]),
        )

    async def usage(self, since: float, platform: str | None = None) -> list[dict[str, Any]]:
        """Per user and chat since ``since``: jobs, audio seconds, characters, cost."""
        where = "created_at >= ?" + (" AND platform = ?" if platform else "")
        params: tuple[Any, ...] = (since, platform) if platform else (since,)
        sql = (
            "SELECT platform, chat_id, user_id, COUNT(*), "
            "COALESCE(SUM(CASE WHEN kind = 'stt' THEN input_duration END), 0), "
            "COALESCE(SUM(json_extract(options, '$.chars')), 0), COALESCE(SUM(cost), 0), "
            f"MAX(currency) FROM jobs WHERE {where} GROUP BY platform, chat_id, user_id "
            "ORDER BY SUM(cost) DESC, COUNT(*) DESC"
        )
        rows = await self._fetch(sql, params)
        keys = (
            "platform",
            "chat_id",
            "user_id",
            "jobs",
            "audio_seconds",
            "chars",
            "cost",
            "currency",
        )
        return [dict(zip(keys, tuple(r), strict=True)) for r in rows]

    async def forget(self, platform: str, chat_id: str, user_id: str) -> int:
        """Delete a user's jobs in one chat (with their audio); a job mid-submit is kept until
        its answer is recorded, so the request in flight cannot be orphaned."""
        return await self._write(
            "DELETE FROM jobs WHERE platform = ? AND chat_id = ? AND user_id = ? "
            "AND state != 'submitting'",
            (platform, chat_id, user_id),
        )

    async def purge(self, before: float) -> int:
        """Delete finished jobs (and their audio) completed before ``before``; returns the count."""
        return await self._write(
            "DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') "
            "AND completed_at < ? AND (delivered_at IS NOT NULL OR delivery_error IS NOT NULL "
            "OR state = 'cancelled')",
            (before,),
        )

    async def find_by_source(self, platform: str, chat_id: str, source: str) -> Job | None:
        """The job created from one platform event (``origin.extra["source"]``), if any."""
        jobs = await self._select(
            "platform = ? AND chat_id = ? AND json_extract(origin_extra, '$.source') = ?",
            (platform, chat_id, source),
            "LIMIT 1",
        )
        return jobs[0] if jobs else None
