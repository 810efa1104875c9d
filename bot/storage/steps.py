"""Steps: the job-row transitions the worker records (submit, poll, complete, fail)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.jobs.links import Fetched
from bot.jobs.steps import Completion, Failure, NextPoll, Submission
from bot.model.job import Blob, Job, JobState, Started
from bot.storage.codec import BLOB_COLUMNS, JOB_COLUMNS, blob_row, dumps, job_from_row
from bot.storage.database import (
    KEEP_HOME,
    MINE,
    RELEASE,
    UNFINISHED,
    Database,
    Executor,
    marks,
    state_in,
)

_UPSERT_BLOB = (
    f"INSERT INTO job_blobs ({', '.join(BLOB_COLUMNS)}) VALUES ({marks(5)}) "
    "ON CONFLICT (job_id, role) DO UPDATE SET data = excluded.data, "
    "filename = excluded.filename, content_type = excluded.content_type"
)

# The clip of the job a ``WITH done AS (UPDATE … RETURNING …)`` just completed.
_UPSERT_DONE_OUTPUT = _UPSERT_BLOB.replace(
    f"VALUES ({marks(5)})", "SELECT done.id, 'output', ?, ?, ? FROM done"
)


async def select_jobs(db: Executor, where: str, params: Sequence[Any], tail: str = "") -> list[Job]:
    """The jobs matching ``where`` (then ``tail``: order, limit)."""
    rows = await db.fetch(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} {tail}", params)
    return [job_from_row(r) for r in rows]


async def one_job(db: Executor, where: str, params: Sequence[Any], tail: str = "") -> Job | None:
    """The first job matching ``where``, or None."""
    jobs = await select_jobs(db, where, params, tail)
    return jobs[0] if jobs else None


async def returning_job(db: Executor, sql: str, params: Sequence[Any]) -> Job | None:
    """The job as one guarded UPDATE left it (one round trip, no re-read), or None."""
    rows = await db.fetch(f"{sql} RETURNING {JOB_COLUMNS}", params)
    return job_from_row(rows[0]) if rows else None


def _hold(until: float | None, owner: str) -> tuple[str, tuple[object, ...]]:
    """The lease columns of a finishing step: released, or kept by this owner until ``until``
    (a full lease from now, not what is left of the claim's: an inline reply may take a while
    under load, and a lease expiring mid-send would let another step send it again)."""
    if until is None:
        return RELEASE, ()
    return "lease_owner = ?, lease_until = ?", (owner, until)


class Steps:
    """Each step of a job, one statement guarded in its WHERE clause (state and lease owner);
    composed into :class:`bot.storage.jobs.SqlJobStore`."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (a runner reads another job, or its own again)."""
        return await one_job(self.db, "id = ?", (job_id,))

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
        return await returning_job(
            self.db,
            f"UPDATE jobs SET state = '{JobState.QUEUED.value}', next_poll_at = ?, "
            f"updated_at = ?, {RELEASE} "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE}",
            (next_at, now, job_id, self.owner),
        )

    async def requeue_lost(self, job_id: str, now: float) -> Job | None:
        """SUBMITTED → QUEUED: the provider lost the run and reruns cost nothing (``keep_input``
        was set at submit); the kept input goes to the provider again."""
        rows = await self.db.fetch(
            f"UPDATE jobs SET state = '{JobState.QUEUED.value}', ticket = NULL, "
            f"next_poll_at = ?, queue_position = NULL, progress = NULL, updated_at = ?, {RELEASE} "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTED])} AND keep_input <> 0 AND {MINE} "
            f"RETURNING {JOB_COLUMNS}",
            (now, now, job_id, self.owner),
        )
        return job_from_row(rows[0]) if rows else None

    async def mark_submitted(self, job_id: str, sent: Submission, now: float) -> Job | None:
        """SUBMITTING → SUBMITTED with the ticket; the input audio is dropped in the same step
        unless ``sent.keep_input`` (a provider that reruns lost jobs for free needs it until the
        end)."""
        return await returning_job(
            self.db,
            f"UPDATE jobs SET state = '{JobState.SUBMITTED.value}', ticket = ?, "
            "next_poll_at = ?, cost = ?, queue_position = ?, submitted_at = ?, updated_at = ?, "
            # The run stays with this process when it lives here (see database.KEEP_HOME).
            "keep_input = ?, progress = NULL, lease_until = NULL, "
            "lease_owner = CASE WHEN ? = 1 THEN lease_owner END "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE}",
            (
                dumps(dict(sent.ticket)),
                sent.next_poll_at,
                sent.cost,
                sent.queue_position,
                now,
                now,
                int(sent.keep_input),
                int(sent.keep_input),
                job_id,
                self.owner,
            ),
        )

    async def reschedule(self, job_id: str, poll: NextPoll, now: float) -> Job | None:
        """Record one more poll of a SUBMITTED job, its progress (kept when not reported) and
        when to ask next."""
        return await returning_job(
            self.db,
            "UPDATE jobs SET next_poll_at = ?, queue_position = ?, poll_count = poll_count + 1, "
            f"progress = COALESCE(?, progress), updated_at = ?, {KEEP_HOME} "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTED])} AND {MINE}",
            (poll.next_poll_at, poll.queue_position, poll.progress, now, job_id, self.owner),
        )

    async def complete(self, job_id: str, done: Completion, now: float) -> Job | None:
        """SUBMITTING/SUBMITTED → COMPLETED with the result; input audio dropped. With
        ``done.hold_until`` the step keeps its lease, renewed to that time, to deliver at once
        (nobody else can claim the reply meanwhile)."""
        lease, held = _hold(done.hold_until, self.owner)
        sql = (
            f"UPDATE jobs SET state = '{JobState.COMPLETED.value}', result = ?, "
            "cost = COALESCE(?, cost), currency = COALESCE(?, currency), completed_at = ?, "
            "updated_at = ?, deliver_after = ?, next_poll_at = NULL, "
            f"poll_count = poll_count + ?, {lease} WHERE id = ? "
            f"AND {state_in([JobState.SUBMITTING, JobState.SUBMITTED])} AND {MINE} "
            f"RETURNING {JOB_COLUMNS}"
        )
        row = (dumps(dict(done.result)), done.cost, done.currency, now, now, now, int(done.polled))
        params = (*row, *held, job_id, self.owner)
        output_blob = done.output_blob
        wake = self.db.notify()
        if output_blob is None and not wake:  # one statement: no transaction needed
            rows = await self.db.fetch(sql, params)
            return job_from_row(rows[0]) if rows else None
        if self.db.dialect.wake:  # the clip and the wake-up in the same statement
            return await self._complete_at_once(sql, params, output_blob)

        async def body(tx: Executor) -> Job | None:
            rows = await tx.fetch(sql, params)
            if not rows:
                return None
            if output_blob is not None:  # the clip and the state change land together
                await tx.execute(_UPSERT_BLOB, blob_row(job_id, "output", output_blob))
            if wake:
                await tx.execute(wake)
            return job_from_row(rows[0])

        return await self.db.transact(body)

    async def _complete_at_once(
        self, sql: str, params: tuple[Any, ...], output_blob: Blob | None
    ) -> Job | None:
        """:meth:`complete` as one statement (data-modifying ``WITH``): the row moved, then
        its clip and the wake-up only if it did, in one round trip."""
        clip = ""
        audio: tuple[Any, ...] = ()
        if output_blob is not None:
            clip = f", clip AS ({_UPSERT_DONE_OUTPUT})"
            audio = (output_blob.data, output_blob.filename, output_blob.content_type)
        rows = await self.db.fetch(
            f"WITH done AS ({sql}){clip}, woke AS (SELECT {self.db.dialect.wake} FROM done) "
            "SELECT done.*, (SELECT COUNT(*) FROM woke) AS woke FROM done",
            (*params, *audio),
        )
        return job_from_row(rows[0]) if rows else None

    async def fail(self, job_id: str, failure: Failure, now: float) -> Job | None:
        """Any unfinished state → FAILED with the user-facing sentence; input audio dropped
        (``failure.hold_until``: as in :meth:`complete`)."""
        lease, held = _hold(failure.hold_until, self.owner)
        row = (failure.error, failure.error_code, now, now, now, int(failure.polled))
        return await returning_job(
            self.db,
            f"UPDATE jobs SET state = '{JobState.FAILED.value}', error = ?, error_code = ?, "
            "completed_at = ?, updated_at = ?, deliver_after = ?, next_poll_at = NULL, "
            f"poll_count = poll_count + ?, {lease} WHERE id = ? AND {UNFINISHED} AND {MINE}",
            (*row, *held, job_id, self.owner),
        )

    # -- a link's download (see bot.jobs.links) ------------------------------------------

    async def download_progress(
        self, job_id: str, done: int, share: float | None, now: float
    ) -> Job | None:
        """Record a SUBMITTING link job's download: ``done`` bytes so far (in ``input_bytes``
        until the audio is stored) and the ``share`` of the whole, when its size is known. A
        cancelled job (or one another process took) refuses: the download stops."""
        return await returning_job(
            self.db,
            "UPDATE jobs SET progress = ?, input_bytes = ?, updated_at = ? "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE}",
            (share, done, now, job_id, self.owner),
        )

    async def downloaded(self, job_id: str, fetched: Fetched, now: float) -> Job | None:
        """SUBMITTING → QUEUED with the downloaded audio as the job's input, its duration,
        options and deadline, in one transaction (the lease ends: the next step is claimed like
        any other, at once)."""
        blob = fetched.blob
        sql = (
            f"UPDATE jobs SET state = '{JobState.QUEUED.value}', options = ?, "
            "input_duration = ?, input_bytes = ?, deadline_at = ?, next_poll_at = ?, "
            f"progress = NULL, updated_at = ?, {RELEASE} "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE} "
            f"RETURNING {JOB_COLUMNS}"
        )
        options = dumps(dict(fetched.options))
        params = (options, fetched.duration, len(blob.data), fetched.deadline_at, now, now)
        wake = self.db.notify()

        async def body(tx: Executor) -> Job | None:
            rows = await tx.fetch(sql, (*params, job_id, self.owner))
            if not rows:
                return None
            await tx.execute(_UPSERT_BLOB, blob_row(job_id, "input", blob))
            if wake:
                await tx.execute(wake)
            return job_from_row(rows[0])

        return await self.db.transact(body)
