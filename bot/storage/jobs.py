"""SqlJobStore: job rows over any :class:`Database`, composing its claims, parts, replies, usage
and kept audio; each state change one guarded statement."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from bot.jobs.leader import Leader
from bot.model.job import Admission, Blob, Job, JobState, NewJob, new_job_id
from bot.model.speech import Origin
from bot.storage.claims import Claims
from bot.storage.codec import (
    BLOB_COLUMNS,
    JOB_COLUMNS,
    NEW_JOB_COLUMNS,
    blob_row,
    dumps,
    job_from_row,
    new_job_row,
)
from bot.storage.database import (
    RELEASE,
    UNFINISHED,
    Database,
    DuplicateKey,
    Executor,
    marks,
    state_in,
)
from bot.storage.kept import KeptAudio
from bot.storage.parts import Parts
from bot.storage.replies import Replies
from bot.storage.steps import Steps, one_job, select_jobs
from bot.storage.usage import Usage

_LOGGER = logging.getLogger(__name__)

_RELEASE_KEY = (
    "UPDATE jobs SET unique_key = NULL WHERE unique_key = ? "
    f"AND {state_in([JobState.FAILED, JobState.CANCELLED])}"
)
_INSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(NEW_JOB_COLUMNS)}) VALUES ({marks(len(NEW_JOB_COLUMNS))})"
)
_INSERT_BLOB = f"INSERT INTO job_blobs ({', '.join(BLOB_COLUMNS)}) VALUES ({marks(5)})"


def new_owner() -> str:
    """A lease owner id for this process: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _same(job: Job, new: NewJob, now: float) -> bool:
    return (job.origin, job.created_at, job.kind, dict(job.options)) == (
        new.origin,
        now,
        new.kind,
        dict(new.options),
    )


class SqlJobStore:
    """The job store of every SQL backend (they differ in :class:`Database`): job rows here,
    and one object per other concern over the same database, each handed to its users by the
    composition root (the poller gets :attr:`claims`, the worker :attr:`steps`)."""

    def __init__(self, db: Database, owner: str | None = None) -> None:
        self.db = db
        self.owner = owner or new_owner()
        self.claims = Claims(db, self.owner)
        self.parts = Parts(db, self.owner)
        self.replies = Replies(db, self.owner)
        self.usage = Usage(db)
        self.kept = KeptAudio(db)
        self.steps = Steps(db, self.owner)

    def leader(self, name: str) -> Leader:
        """The lock named ``name`` (one holder across the processes on this database)."""
        return self.db.leader(name)

    async def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        await self.db.close()

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
        """See :meth:`bot.service.records.JobRecords.create`. A failed or cancelled holder of
        ``new.unique_key`` gives it up in the same transaction; ``admit`` is checked there too,
        serialised per user and chat (SQLite: one writer; PostgreSQL: advisory transaction
        locks), so two creations never both pass on the same remaining allowance."""
        blobs = (("input", input_blob), ("output", output_blob))
        size = len(input_blob.data) if input_blob else None
        for attempt in range(20):
            job_id = new.id if new.id and attempt == 0 else new_job_id()
            row = new_job_row(job_id, new, now=now, state=state, input_bytes=size, result=result)

            try:
                return await self._create_once(new, row, blobs, admit)
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
        raise RuntimeError("could not allocate a unique job id")

    async def _create_once(
        self,
        new: NewJob,
        row: Sequence[Any],
        blobs: Sequence[tuple[str, Blob | None]],
        admit: Admission | None,
    ) -> Job:
        """One attempt of :meth:`create`: one transaction (a backend may do it in one
        statement: see :mod:`bot.storage.postgres_create`)."""

        async def body(tx: Executor) -> Job:
            return await self._insert(tx, new, row, blobs, admit)

        return await self.db.transact(body)

    async def _insert(
        self,
        tx: Executor,
        new: NewJob,
        row: Sequence[Any],
        blobs: Sequence[tuple[str, Blob | None]],
        admit: Admission | None,
    ) -> Job:
        """One attempt of :meth:`create`, inside its transaction."""
        if new.unique_key is not None:  # a failed or cancelled job gives its key up
            await tx.execute(_RELEASE_KEY, (new.unique_key,))
        if admit is not None:
            await self._admit(tx, new.origin, admit)
        # RETURNING: the stored row comes back with the insert (no second read).
        rows = await tx.fetch(f"{_INSERT_JOB} RETURNING {JOB_COLUMNS}", row)
        job = job_from_row(rows[0])
        for role, blob in blobs:
            if blob is not None:
                await tx.execute(_INSERT_BLOB, blob_row(job.id, role, blob))
        wake = self.db.notify()
        if wake:
            await tx.execute(wake)
        return job

    async def _admit(self, tx: Executor, origin: Origin, admit: Admission) -> None:
        lock = self.db.dialect.lock_key
        if lock:
            p = origin.platform
            for key in sorted((f"u:{p}:{origin.user_id}", f"c:{p}:{origin.chat_id}")):
                await tx.fetch(lock, (key,))
        admit.check(await self.usage.read_activity(tx, origin, admit.started_since, admit.day))

    async def get(self, job_id: str) -> Job | None:
        """Return the job with this id, or None."""
        return await one_job(self.db, "id = ?", (job_id,))

    async def find_for_chat(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """Return the job only if it belongs to this chat (chats never see each other's jobs)."""
        return await one_job(
            self.db,
            "id = ? AND platform = ? AND chat_id = ?",
            (job_id.strip().lower(), platform, chat_id),
        )

    async def recent_for_chat(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """Newest jobs of one chat first."""
        return await select_jobs(
            self.db,
            "platform = ? AND chat_id = ?",
            (platform, chat_id, max(0, limit)),
            "ORDER BY created_at DESC LIMIT ?",
        )

    async def recent(self, limit: int = 20) -> list[Job]:
        """Newest jobs overall first."""
        return await select_jobs(
            self.db, "TRUE", (max(0, limit),), "ORDER BY created_at DESC LIMIT ?"
        )

    async def find_reusable(self, dedup_key: str) -> Job | None:
        """The newest completed job with this dedup key, whose result can be reused for free."""
        return await one_job(
            self.db,
            f"dedup_key = ? AND {state_in([JobState.COMPLETED])}",
            (dedup_key,),
            "ORDER BY created_at DESC LIMIT 1",
        )

    async def find_unique(self, unique_key: str) -> Job | None:
        """The live (not failed or cancelled) job holding ``unique_key``, if any."""
        dead = state_in([JobState.FAILED, JobState.CANCELLED])
        return await one_job(self.db, f"unique_key = ? AND NOT {dead}", (unique_key,), "LIMIT 1")

    async def find_released(self, unique_key: str) -> Job | None:
        """The newest failed or cancelled job that held ``unique_key`` (its finished parts may
        be reused by the next job for the same thing)."""
        dead = state_in([JobState.FAILED, JobState.CANCELLED])
        return await one_job(
            self.db, f"unique_key = ? AND {dead}", (unique_key,), "ORDER BY created_at DESC LIMIT 1"
        )

    async def find_by_source(self, platform: str, chat_id: str, source: str) -> Job | None:
        """The job created from one platform event (``origin.extra["source"]``), if any."""
        source_sql = self.db.dialect.json_text("origin_extra", "source")
        return await one_job(
            self.db,
            f"platform = ? AND chat_id = ? AND {source_sql} = ?",
            (platform, chat_id, source),
            "LIMIT 1",
        )

    # -- changes outside the job steps ---------------------------------------------------

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

    async def update_extra(self, job_id: str, extra: Mapping[str, Any], now: float) -> bool:
        """Replace the adapter's per-job notes (e.g. an interaction token's fate)."""
        return (
            await self.db.execute(
                "UPDATE jobs SET extra = ?, updated_at = ? WHERE id = ?",
                (dumps(dict(extra)), now, job_id),
            )
            > 0
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
