"""SqlJobStore: job rows over any :class:`Database`; each state change one guarded statement."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.model.job import (
    REPLY_STATES,
    Admission,
    Blob,
    Job,
    JobState,
    NewJob,
    Started,
)
from bot.model.speech import Origin
from bot.storage.claims import ClaimsMixin
from bot.storage.codec import (
    BLOB_COLUMNS,
    JOB_COLUMNS,
    NEW_JOB_COLUMNS,
    blob_from_row,
    blob_row,
    dumps,
    job_from_row,
    new_job_row,
)
from bot.storage.database import (
    KEEP_HOME,
    MINE,
    RELEASE,
    UNDELIVERED,
    UNFINISHED,
    Database,
    DuplicateKey,
    Executor,
    marks,
    state_in,
)
from bot.storage.kept import KeptAudioMixin
from bot.storage.parts import PartsMixin
from bot.storage.queries import UsageMixin

_LOGGER = logging.getLogger(__name__)

_CLOCK_COLUMNS = (
    "created_at",
    "updated_at",
    "submitted_at",
    "completed_at",
    "next_poll_at",
    "deliver_after",
    "deadline_at",
)
_RELEASE_KEY = (
    "UPDATE jobs SET unique_key = NULL WHERE unique_key = ? "
    f"AND {state_in([JobState.FAILED, JobState.CANCELLED])}"
)
_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i: ids are typed by hand in /status


def new_owner() -> str:
    """A lease owner id for this process: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _hold(until: float | None, owner: str) -> tuple[str, tuple[object, ...]]:
    """The lease columns of a finishing step: released, or kept by this owner until ``until``
    (a full lease from now, not what is left of the claim's: an inline reply may take a while
    under load, and a lease expiring mid-send would let another step send it again)."""
    if until is None:
        return RELEASE, ()
    return "lease_owner = ?, lease_until = ?", (owner, until)


def _same(job: Job, new: NewJob, now: float) -> bool:
    return (job.origin, job.created_at, job.kind, dict(job.options)) == (
        new.origin,
        now,
        new.kind,
        dict(new.options),
    )


class SqlJobStore(ClaimsMixin, PartsMixin, UsageMixin, KeptAudioMixin):
    """The job store of every SQL backend (they differ in :class:`Database`)."""

    def __init__(self, db: Database, owner: str | None = None) -> None:
        self.db = db
        self.owner = owner or new_owner()

    async def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        await self.db.close()

    async def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[Job]:
        rows = await self.db.fetch(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} {tail}", params)
        return [job_from_row(r) for r in rows]

    async def _one(self, where: str, params: Sequence[Any], tail: str = "") -> Job | None:
        jobs = await self._select(where, params, tail)
        return jobs[0] if jobs else None

    async def _update(self, sql: str, params: Sequence[Any]) -> bool:
        return await self.db.execute(sql, params) > 0

    async def _returning(self, sql: str, params: Sequence[Any]) -> Job | None:
        """The job as one guarded UPDATE left it (one round trip, no re-read), or None."""
        rows = await self.db.fetch(f"{sql} RETURNING {JOB_COLUMNS}", params)
        return job_from_row(rows[0]) if rows else None

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
        admit: Admission | None = None,
    ) -> Job:
        """Insert a job (QUEUED with its input, or already COMPLETED for a reused result).
        With ``new.unique_key`` held by a live job, nothing is inserted and that job is
        returned (a failed or cancelled holder gives the key up first, in the same transaction).
        With ``admit``, its limits are checked in the same transaction, serialised per user and
        chat (SQLite: one writer; PostgreSQL: advisory transaction locks), so two creations
        never both pass on the same remaining allowance."""
        columns = ", ".join(NEW_JOB_COLUMNS)
        insert_job = f"INSERT INTO jobs ({columns}) VALUES ({marks(len(NEW_JOB_COLUMNS))})"
        insert_blob = f"INSERT INTO job_blobs ({', '.join(BLOB_COLUMNS)}) VALUES ({marks(5)})"
        size = len(input_blob.data) if input_blob else None
        wake = self.db.notify()
        for _ in range(20):
            job_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
            row = new_job_row(job_id, new, now=now, state=state, input_bytes=size, result=result)

            async def body(tx: Executor, job_id: str = job_id, row: Any = row) -> Job:
                if new.unique_key is not None:  # a failed or cancelled job gives its key up
                    await tx.execute(_RELEASE_KEY, (new.unique_key,))
                if admit is not None:
                    await self._admit(tx, new.origin, admit)
                # RETURNING: the stored row comes back with the insert (no second read).
                rows = await tx.fetch(f"{insert_job} RETURNING {JOB_COLUMNS}", row)
                for role, blob in (("input", input_blob), ("output", output_blob)):
                    if blob is not None:
                        await tx.execute(insert_blob, blob_row(job_id, role, blob))
                if wake:
                    await tx.execute(wake)
                return job_from_row(rows[0])

            try:
                return await self.db.transact(body)
            except DuplicateKey:
                # Our own insert, if its commit landed and only the answer was lost (the
                # backend ran it again); the live job that has this unique key; else another
                # job has this id: draw another.
                mine = await self.get(job_id)
                if mine is not None and _same(mine, new, now):
                    return mine
                if new.unique_key is not None:
                    holder = await self.find_unique(new.unique_key)
                    if holder is not None:
                        return holder
                continue
        raise RuntimeError("could not allocate a unique job id")

    async def _admit(self, tx: Executor, origin: Origin, admit: Admission) -> None:
        lock = self.db.dialect.lock_key
        if lock:
            p = origin.platform
            for key in sorted((f"u:{p}:{origin.user_id}", f"c:{p}:{origin.chat_id}")):
                await tx.fetch(lock, (key,))
        admit.check(await self._read_activity(tx, origin, admit.started_since, admit.day))

    async def get(self, job_id: str) -> Job | None:
        """Return the job with this id, or None."""
        return await self._one("id = ?", (job_id,))

    async def find_for_chat(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """Return the job only if it belongs to this chat (chats never see each other's jobs)."""
        return await self._one(
            "id = ? AND platform = ? AND chat_id = ?", (job_id.strip().lower(), platform, chat_id)
        )

    async def recent_for_chat(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """Newest jobs of one chat first."""
        return await self._select(
            "platform = ? AND chat_id = ?",
            (platform, chat_id, max(0, limit)),
            "ORDER BY created_at DESC LIMIT ?",
        )

    async def recent(self, limit: int = 20) -> list[Job]:
        """Newest jobs overall first."""
        return await self._select("TRUE", (max(0, limit),), "ORDER BY created_at DESC LIMIT ?")

    async def find_reusable(self, dedup_key: str) -> Job | None:
        """The newest completed job with this dedup key, whose result can be reused for free."""
        return await self._one(
            f"dedup_key = ? AND {state_in([JobState.COMPLETED])}",
            (dedup_key,),
            "ORDER BY created_at DESC LIMIT 1",
        )

    async def find_unique(self, unique_key: str) -> Job | None:
        """The live (not failed or cancelled) job holding ``unique_key``, if any."""
        dead = state_in([JobState.FAILED, JobState.CANCELLED])
        return await self._one(f"unique_key = ? AND NOT {dead}", (unique_key,), "LIMIT 1")

    async def find_released(self, unique_key: str) -> Job | None:
        """The newest failed or cancelled job that held ``unique_key`` (its finished parts may
        be reused by the next job for the same thing)."""
        dead = state_in([JobState.FAILED, JobState.CANCELLED])
        return await self._one(
            f"unique_key = ? AND {dead}", (unique_key,), "ORDER BY created_at DESC LIMIT 1"
        )

    async def find_by_source(self, platform: str, chat_id: str, source: str) -> Job | None:
        """The job created from one platform event (``origin.extra["source"]``), if any."""
        source_sql = self.db.dialect.json_text("origin_extra", "source")
        return await self._one(
            f"platform = ? AND chat_id = ? AND {source_sql} = ?",
            (platform, chat_id, source),
            "LIMIT 1",
        )

    async def load_blob(self, job_id: str, role: str) -> Blob | None:
        """Return the ``input`` or ``output`` audio of a job, if still kept."""
        rows = await self.db.fetch(
            "SELECT data, filename, content_type FROM job_blobs WHERE job_id = ? AND role = ?",
            (job_id, role),
        )
        return blob_from_row(rows[0]) if rows else None

    # -- transitions (each one statement, guarded in its WHERE clause) ----------------------

    async def begin_submit(self, job_id: str, now: float) -> Started | None:
        """QUEUED → SUBMITTING, recorded *before* the request leaves (see README: crash safety),
        returning the job and its input audio from the same statement. The lease is kept: the
        submit is still running. Run again after a lost answer (the backend retries), it finds
        its own SUBMITTING under this owner's lease (only the step running now can hold that)
        and says yes without counting a second attempt."""
        queued = state_in([JobState.QUEUED])
        blob = "(SELECT {} FROM job_blobs WHERE job_id = jobs.id AND role = 'input') AS in_{}"
        rows = await self.db.fetch(
            f"UPDATE jobs SET state = '{JobState.SUBMITTING.value}', "
            f"attempts = attempts + CASE WHEN {queued} THEN 1 ELSE 0 END, updated_at = ? "
            f"WHERE id = ? AND ({queued} AND {MINE} OR "
            f"{state_in([JobState.SUBMITTING])} AND lease_owner = ?) RETURNING {JOB_COLUMNS}, "
            + ", ".join(blob.format(c, c) for c in ("data", "filename", "content_type")),
            (now, job_id, self.owner, self.owner),
        )
        if not rows:
            return None
        row = rows[0]
        data = row["in_data"]
        kept = Blob(bytes(data), row["in_filename"], row["in_content_type"]) if data else None
        return Started(job_from_row(row), kept)

    async def requeue(self, job_id: str, next_at: float, now: float) -> Job | None:
        """SUBMITTING → QUEUED: only when the provider provably did not take the job."""
        return await self._returning(
            f"UPDATE jobs SET state = '{JobState.QUEUED.value}', next_poll_at = ?, "
            f"updated_at = ?, {RELEASE} "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE}",
            (next_at, now, job_id, self.owner),
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
    ) -> Job | None:
        """SUBMITTING → SUBMITTED with the ticket; the input audio is dropped in the same step
        unless ``keep_input`` (a provider that reruns lost jobs for free needs it until the end)."""
        return await self._returning(
            f"UPDATE jobs SET state = '{JobState.SUBMITTED.value}', ticket = ?, "
            "next_poll_at = ?, cost = ?, queue_position = ?, submitted_at = ?, updated_at = ?, "
            # The run stays with this process when it lives here (see database.KEEP_HOME).
            "keep_input = ?, progress = NULL, lease_until = NULL, "
            "lease_owner = CASE WHEN ? = 1 THEN lease_owner END "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE}",
            (
                dumps(dict(ticket)),
                next_poll_at,
                cost,
                queue_position,
                now,
                now,
                int(keep_input),
                int(keep_input),
                job_id,
                self.owner,
            ),
        )

    async def reschedule(
        self,
        job_id: str,
        *,
        next_poll_at: float,
        now: float,
        queue_position: int | None = None,
        progress: float | None = None,
    ) -> Job | None:
        """Record one more poll of a SUBMITTED job, its progress (kept when not reported) and
        when to ask next."""
        return await self._returning(
            "UPDATE jobs SET next_poll_at = ?, queue_position = ?, poll_count = poll_count + 1, "
            f"progress = COALESCE(?, progress), updated_at = ?, {KEEP_HOME} "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTED])} AND {MINE}",
            (next_poll_at, queue_position, progress, now, job_id, self.owner),
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
        hold_until: float | None = None,
    ) -> Job | None:
        """SUBMITTING/SUBMITTED → COMPLETED with the result; input audio dropped. With
        ``hold_until`` the step keeps its lease, renewed to that time, to deliver at once
        (nobody else can claim the reply meanwhile)."""
        lease, held = _hold(hold_until, self.owner)
        sql = (
            f"UPDATE jobs SET state = '{JobState.COMPLETED.value}', result = ?, "
            "cost = COALESCE(?, cost), currency = COALESCE(?, currency), completed_at = ?, "
            "updated_at = ?, deliver_after = ?, next_poll_at = NULL, "
            f"poll_count = poll_count + ?, {lease} WHERE id = ? "
            f"AND {state_in([JobState.SUBMITTING, JobState.SUBMITTED])} AND {MINE} "
            f"RETURNING {JOB_COLUMNS}"
        )
        params = (
            dumps(dict(result)),
            cost,
            currency,
            now,
            now,
            now,
            int(polled),
            *held,
            job_id,
            self.owner,
        )
        wake = self.db.notify()
        if output_blob is None and not wake:  # one statement: no transaction needed
            rows = await self.db.fetch(sql, params)
            return job_from_row(rows[0]) if rows else None

        async def body(tx: Executor) -> Job | None:
            rows = await tx.fetch(sql, params)
            if not rows:
                return None
            if output_blob is not None:  # the clip and the state change land together
                await tx.execute(
                    f"INSERT INTO job_blobs ({', '.join(BLOB_COLUMNS)}) VALUES ({marks(5)}) "
                    "ON CONFLICT (job_id, role) DO UPDATE SET data = excluded.data, "
                    "filename = excluded.filename, content_type = excluded.content_type",
                    blob_row(job_id, "output", output_blob),
                )
            if wake:
                await tx.execute(wake)
            return job_from_row(rows[0])

        return await self.db.transact(body)

    async def fail(
        self,
        job_id: str,
        error: str,
        *,
        now: float,
        error_code: str | None = None,
        polled: bool = False,
        hold_until: float | None = None,
    ) -> Job | None:
        """Any unfinished state → FAILED with the user-facing sentence; input audio dropped
        (``hold_until``: as in :meth:`complete`)."""
        lease, held = _hold(hold_until, self.owner)
        return await self._returning(
            f"UPDATE jobs SET state = '{JobState.FAILED.value}', error = ?, error_code = ?, "
            "completed_at = ?, updated_at = ?, deliver_after = ?, next_poll_at = NULL, "
            f"poll_count = poll_count + ?, {lease} WHERE id = ? AND {UNFINISHED} AND {MINE}",
            (error, error_code, now, now, now, int(polled), *held, job_id, self.owner),
        )

    async def cancel(self, job_id: str, now: float) -> Job | None:
        """QUEUED/SUBMITTING/SUBMITTED → CANCELLED, whoever holds the lease: a step finishing
        later finds the state moved and writes nothing. Never delivered afterwards."""
        rows = await self.db.fetch(
            f"UPDATE jobs SET state = '{JobState.CANCELLED.value}', error_code = ?, "
            "completed_at = ?, updated_at = ?, next_poll_at = NULL, deliver_after = NULL, "
            f"{RELEASE} WHERE id = ? AND {UNFINISHED} RETURNING {JOB_COLUMNS}",
            ("cancelled", now, now, job_id),
        )
        return job_from_row(rows[0]) if rows else None

    async def shift_clock(
        self, seconds: float, platforms: Iterable[str], exclude: Sequence[str] = ()
    ) -> int:
        """Move every time of the unfinished or undelivered jobs of these platforms by
        ``seconds`` (the wall clock was stepped), leaving out ``exclude`` (running steps, which
        write new-clock times); returns how many jobs moved."""
        names = list(platforms)
        if not names or not seconds:
            return 0
        moved = ", ".join(f"{column} = {column} + ?" for column in _CLOCK_COLUMNS)
        skip = f" AND id NOT IN ({marks(len(exclude))})" if exclude else ""
        return await self.db.execute(
            f"UPDATE jobs SET {moved} WHERE ({UNFINISHED} OR ({UNDELIVERED})) "
            f"AND {self._pl(names)}{skip}",
            (*[seconds] * len(_CLOCK_COLUMNS), *names, *exclude),
        )

    async def mark_delivered(self, job_id: str, message_id: str | None, now: float) -> bool:
        """Record that the platform accepted the reply (once: later calls return False)."""
        return await self._update(
            f"UPDATE jobs SET delivered_at = ?, delivery_message_id = ?, updated_at = ?, {RELEASE} "
            f"WHERE id = ? AND delivered_at IS NULL AND {state_in(REPLY_STATES)} AND {MINE}",
            (now, message_id, now, job_id, self.owner),
        )

    async def defer_delivery(self, job_id: str, deliver_after: float, now: float) -> bool:
        """Try delivering again later (platform rate limit or outage)."""
        return await self._update(
            "UPDATE jobs SET deliver_after = ?, delivery_attempts = delivery_attempts + 1, "
            f"updated_at = ?, {RELEASE} WHERE id = ? AND delivered_at IS NULL "
            f"AND {state_in(REPLY_STATES)} AND {MINE}",
            (deliver_after, now, job_id, self.owner),
        )

    async def mark_undeliverable(self, job_id: str, reason: str, now: float) -> bool:
        """Give up delivering (bot blocked, chat gone): never retried again."""
        return await self._update(
            f"UPDATE jobs SET delivery_error = ?, updated_at = ?, {RELEASE} "
            "WHERE id = ? AND delivered_at IS NULL AND delivery_error IS NULL "
            f"AND {state_in(REPLY_STATES)} AND {MINE}",
            (reason, now, job_id, self.owner),
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
            (dumps(dict(extra)), now, job_id),
        )

    # -- privacy and retention --------------------------------------------------------------

    async def forget(self, platform: str, chat_id: str, user_id: str) -> int:
        """Delete a user's jobs in one chat (with their audio); a job mid-submit is kept until
        its answer is recorded, so the request in flight cannot be orphaned."""
        return await self.db.execute(
            "DELETE FROM jobs WHERE platform = ? AND chat_id = ? AND user_id = ? "
            f"AND NOT {state_in([JobState.SUBMITTING])}",
            (platform, chat_id, user_id),
        )

    async def purge(self, before: float) -> int:
        """Delete finished jobs (and their audio) completed before ``before``; returns the count.
        Uses the ``jobs_completed`` index (finished jobs by completion time)."""
        return await self.db.execute(
            f"DELETE FROM jobs WHERE completed_at < ? AND ({state_in([JobState.CANCELLED])} "
            "OR delivered_at IS NOT NULL OR delivery_error IS NOT NULL)",
            (before,),
        )
