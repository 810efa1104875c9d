"""Parts: the durable sub-jobs a long recording is split into, stored beside its job row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.model.job import Blob, JobState, NewPart, Part
from bot.model.speech import Transcript
from bot.providers.base import Ticket
from bot.storage.codec import Row, dumps
from bot.storage.database import MINE, Executor, marks, state_in

if TYPE_CHECKING:
    from bot.storage.database import Database

PART_COLUMNS = (
    "job_id, idx, audio_start, audio_seconds, state, ticket, result, error, cost, currency, "
    "attempts, keep_input, updated_at"
)
PART_ALL_COLUMNS = (
    *(c.strip() for c in PART_COLUMNS.split(",")),
    "data",
    "filename",
    "content_type",
)
_INSERT = (
    "INSERT INTO job_parts (job_id, idx, audio_start, audio_seconds, state, updated_at, data, "
    f"filename, content_type, result) VALUES ({marks(10)})"
)
# A part changes only under its job's lease held by this process (or no lease at all): the
# step that claimed the job is the one working on its parts.
_HELD = (
    "EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_parts.job_id "
    "AND (jobs.lease_owner IS NULL OR jobs.lease_owner = ?))"
)
_KEY = "job_id = ? AND idx = ?"
# The job's cost is its parts' cost so far: usage and /status see what was paid at once.
_SUM_COST = (
    "UPDATE jobs SET cost = (SELECT SUM(cost) FROM job_parts WHERE job_id = ?), "
    "currency = COALESCE((SELECT MAX(currency) FROM job_parts WHERE job_id = ?), currency) "
    "WHERE id = ?"
)


def part_from_row(row: Row) -> Part:
    """The :class:`Part` of a row selected with :data:`PART_COLUMNS`."""
    return Part(
        job_id=row["job_id"],
        index=int(row["idx"]),
        start=float(row["audio_start"]),
        duration=float(row["audio_seconds"]),
        state=JobState(row["state"]),
        ticket=json.loads(row["ticket"]) if row["ticket"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"],
        cost=row["cost"],
        currency=row["currency"],
        attempts=int(row["attempts"]),
        keep_input=bool(row["keep_input"]),
        updated_at=float(row["updated_at"]),
    )


class Parts:
    """The parts of split jobs, composed into :class:`bot.storage.jobs.SqlJobStore`; every
    change one guarded statement, like a job's, made only under the job's lease."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner

    async def store_parts(
        self, job_id: str, parts: Sequence[NewPart], *, next_poll_at: float, now: float
    ) -> bool:
        """SUBMITTING → SUBMITTED for a recording just split, its parts inserted (queued, with
        their audio) in the same transaction: a crash leaves it unsplit or split, never half."""
        submitted = (
            f"UPDATE jobs SET state = '{JobState.SUBMITTED.value}', ticket = ?, "
            "next_poll_at = ?, submitted_at = ?, updated_at = ?, progress = 0, "
            "lease_owner = NULL, lease_until = NULL "
            f"WHERE id = ? AND {state_in([JobState.SUBMITTING])} AND {MINE}"
        )
        ticket = dumps({"split": len(parts)})
        wake = self.db.notify()

        async def body(tx: Executor) -> bool:
            params = (ticket, next_poll_at, now, now, job_id, self.owner)
            if await tx.execute(submitted, params) == 0:
                return False
            for index, p in enumerate(parts):
                b, done = p.blob, p.result is not None
                state = JobState.COMPLETED if done else JobState.QUEUED
                row = (job_id, index, p.start, p.duration, state.value, now)
                data = None if done else b.data
                await tx.execute(_INSERT, (*row, data, b.filename, b.content_type, dumps(p.result)))
            if wake:
                await tx.execute(wake)
            return True

        return await self.db.transact(body)

    async def of(self, job_id: str) -> list[Part]:
        """The parts of a job in recording order (empty for a job that was not split)."""
        rows = await self.db.fetch(
            f"SELECT {PART_COLUMNS} FROM job_parts WHERE job_id = ? ORDER BY idx", (job_id,)
        )
        return [part_from_row(r) for r in rows]

    async def load_part_input(self, job_id: str, index: int) -> Blob | None:
        """A part's audio, while kept (until the provider has it)."""
        rows = await self.db.fetch(
            f"SELECT data, filename, content_type FROM job_parts WHERE {_KEY}", (job_id, index)
        )
        if not rows or rows[0]["data"] is None:
            return None
        r = rows[0]
        return Blob(bytes(r["data"]), r["filename"], r["content_type"])

    async def _part_update(self, sets: str, guard: str, params: Sequence[Any]) -> bool:
        sql = f"UPDATE job_parts SET {sets} WHERE {_KEY} AND {guard} AND {_HELD}"
        return await self.db.execute(sql, (*params, self.owner)) > 0

    async def begin_part(self, job_id: str, index: int, now: float) -> bool:
        """QUEUED → SUBMITTING, recorded before the part's request leaves."""
        return await self._part_update(
            f"state = '{JobState.SUBMITTING.value}', attempts = attempts + 1, updated_at = ?",
            state_in([JobState.QUEUED]),
            (now, job_id, index),
        )

    async def requeue_part(self, job_id: str, index: int, now: float) -> bool:
        """SUBMITTING (provably not taken) or SUBMITTED with its audio kept (a free rerun of a
        lost run) → QUEUED."""
        return await self._part_update(
            f"state = '{JobState.QUEUED.value}', ticket = NULL, updated_at = ?",
            f"({state_in([JobState.SUBMITTING])} OR "
            f"{state_in([JobState.SUBMITTED])} AND keep_input <> 0 AND data IS NOT NULL)",
            (now, job_id, index),
        )

    async def part_submitted(
        self, job_id: str, index: int, ticket: Ticket, *, now: float, keep_input: bool = False
    ) -> bool:
        """SUBMITTING → SUBMITTED with the provider's ticket; the audio is dropped unless
        ``keep_input`` (the provider reruns a lost run for free and needs it again)."""
        drop = "" if keep_input else ", data = NULL"
        sql = (
            f"UPDATE job_parts SET state = '{JobState.SUBMITTED.value}', ticket = ?, cost = ?, "
            f"keep_input = ?, updated_at = ?{drop} WHERE {_KEY} "
            f"AND {state_in([JobState.SUBMITTING])} AND {_HELD}"
        )
        params = (
            dumps(dict(ticket.data)),
            ticket.cost,
            int(keep_input),
            now,
            job_id,
            index,
            self.owner,
        )
        return await self._with_cost(job_id, sql, params)

    async def _with_cost(self, job_id: str, sql: str, params: Sequence[Any]) -> bool:
        async def body(tx: Executor) -> bool:
            if await tx.execute(sql, params) == 0:
                return False
            await tx.execute(_SUM_COST, (job_id, job_id, job_id))
            return True

        return await self.db.transact(body)

    async def complete_part(self, job_id: str, index: int, t: Transcript, *, now: float) -> bool:
        """SUBMITTING/SUBMITTED → COMPLETED with its transcript; the job's cost becomes the sum
        of its parts' in the same transaction."""
        sql = (
            f"UPDATE job_parts SET state = '{JobState.COMPLETED.value}', result = ?, "
            "cost = COALESCE(?, cost), currency = COALESCE(?, currency), updated_at = ?, "
            f"data = NULL WHERE {_KEY} "
            f"AND {state_in([JobState.SUBMITTING, JobState.SUBMITTED])} AND {_HELD}"
        )
        params = (dumps(t.to_dict()), t.cost, t.currency, now, job_id, index, self.owner)
        return await self._with_cost(job_id, sql, params)

    async def fail_part(self, job_id: str, index: int, error: str, *, now: float) -> bool:
        """Any unfinished state → FAILED with the sentence the stitched transcript shows."""
        unfinished = state_in([JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED])
        return await self._part_update(
            f"state = '{JobState.FAILED.value}', error = ?, updated_at = ?, data = NULL",
            unfinished,
            (error, now, job_id, index),
        )
