"""Claims: the leases that let several processes share the steps of one database, and the
recovery of the steps a dead process left behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from bot.jobs.poller import Reach
from bot.model.job import Job, JobState
from bot.storage.codec import JOB_COLUMNS, job_from_row
from bot.storage.database import (
    AWAY,
    DUE,
    FREE_AT,
    HOME,
    HOME_GRACE,
    RELEASE,
    UNDELIVERED,
    UNFINISHED,
    marks,
    state_in,
)

if TYPE_CHECKING:
    from bot.storage.database import Database

_LOGGER = logging.getLogger(__name__)

_DUE_ORDER = (JobState.SUBMITTED, JobState.QUEUED)
_CLOCK_COLUMNS = (
    "created_at",
    "updated_at",
    "submitted_at",
    "completed_at",
    "next_poll_at",
    "deliver_after",
    "deadline_at",
)


class Claims:
    """The queue the poller claims from (claim, renew, release, next wakeup, clock steps) and
    the recovery of expired submits; composed into :class:`bot.storage.jobs.SqlJobStore`."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner

    async def lock_runner(self, platforms: Iterable[str]) -> None:
        """Register this process as a ``voicebot run`` (SQLite refuses a second one, and the
        one runner takes over the leases its dead predecessor left at once)."""
        names = list(platforms)
        if self.db.lock_runner() and names:
            freed = await self.db.execute(
                f"UPDATE jobs SET {RELEASE} WHERE lease_owner IS NOT NULL AND {self._pl(names)}",
                names,
            )
            if freed:
                _LOGGER.info("took over %d step(s) a stopped process had claimed", freed)

    async def watch(self, wake: Callable[[], None]) -> None:
        """Wake this process when another one creates a job or finishes a step."""
        await self.db.listen(wake)

    def _pl(self, names: Sequence[str]) -> str:
        return f"{self.db.dialect.platform} IN ({marks(len(names))})"

    # -- claims -----------------------------------------------------------------------------

    async def claim(self, now: float, reach: Reach, limit: int, lease: float) -> list[Job]:
        """Lease up to ``limit`` due steps for this owner: replies (to ``reach.replies()`` only)
        first, then polls, then submits, each soonest first (see :class:`bot.jobs.poller.Queue`).

        Work under way before new work: with more due than the steps can take at once, a job
        already submitted finishes before another one starts. Soonest first over polls and
        submits together moved every job in lockstep behind the whole backlog (each poll due
        after the submits queued before it), so under a burst no reply came until every
        job of it was submitted: the capacity bench's fall past its peak on PostgreSQL."""
        names, online = list(reach.platforms), reach.replies()
        jobs: list[Job] = []
        home = (self.owner, now - HOME_GRACE)
        # DUE itself stays in the WHERE clause: it is the due index's own condition (SQLite
        # uses a partial index only when the query repeats it).
        polls, submits = (f"{DUE} AND {state_in([s])} AND ({HOME})" for s in _DUE_ORDER)
        for where, order, extra, of in (
            (UNDELIVERED, "deliver_after", (), online),
            (polls, "next_poll_at", home, names),
            (submits, "next_poll_at", home, names),
        ):
            want = limit - len(jobs)
            if not of or want <= 0:
                continue
            picked = (
                f"SELECT id FROM jobs WHERE {where} AND {order} <= ? AND {FREE_AT} "
                f"AND {self._pl(of)} ORDER BY {order} LIMIT ?{self.db.dialect.skip_locked}"
            )
            rows = await self.db.fetch(
                f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ({picked}) "
                f"RETURNING {JOB_COLUMNS}",
                (self.owner, now + lease, *extra, now, now, *of, want),
            )
            claimed = [job_from_row(r) for r in rows]
            claimed.sort(key=lambda j: (getattr(j, order) or 0.0, j.created_at))
            jobs += claimed
        return jobs

    async def renew(self, job_ids: Sequence[str], until: float) -> int:
        """Extend this owner's leases on ``job_ids`` to ``until``; how many it still held."""
        if not job_ids:
            return 0
        ids = marks(len(job_ids))
        return await self.db.execute(
            f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND id IN ({ids})",
            (until, self.owner, *job_ids),
        )

    async def release(self, job_ids: Sequence[str]) -> int:
        """Give up this owner's leases on ``job_ids``."""
        if not job_ids:
            return 0
        return await self.db.execute(
            f"UPDATE jobs SET {RELEASE} WHERE lease_owner = ? AND id IN ({marks(len(job_ids))})",
            (self.owner, *job_ids),
        )

    async def next_wakeup(self, reach: Reach) -> float | None:
        """The earliest time a poll, a submit or a delivery (to ``reach.replies()``) may become
        claimable."""
        names, online = list(reach.platforms), reach.replies()
        at = "MIN(CASE WHEN lease_until > {0} THEN lease_until ELSE {0} END)"
        # Another process's local run: ours to poll only once it is overdue (HOME_GRACE).
        due = f"(CASE WHEN {AWAY} THEN next_poll_at + {HOME_GRACE} ELSE next_poll_at END)"
        sql = (
            f"SELECT MIN(t) FROM (SELECT {at.format(due)} AS t FROM jobs "
            f"WHERE {DUE} AND {self._pl(names)} "
            f"UNION ALL SELECT {at.format('deliver_after')} FROM jobs WHERE {UNDELIVERED} "
            f"AND {self._pl(online)}) AS w"
        )
        rows = await self.db.fetch(sql, [self.owner, self.owner, *names, *online])
        return None if not rows or rows[0][0] is None else float(rows[0][0])

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

    # -- recovery ---------------------------------------------------------------------------

    async def recover_interrupted(
        self,
        now: float,
        message: str,
        platforms: Iterable[str],
        rerun: Callable[[Job], bool] = lambda job: False,
    ) -> list[str]:
        """See :meth:`bot.jobs.steps.Recovery.recover_interrupted`; a job leased by this
        process's own owner is never settled here."""
        names = list(platforms)
        if not names:
            return []
        stranded = (
            f"{state_in([JobState.SUBMITTING])} AND {FREE_AT} "
            f"AND (lease_owner IS NULL OR lease_owner != ?) AND {self._pl(names)}"
        )
        rows = await self.db.fetch(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {stranded}", (now, self.owner, *names)
        )
        jobs = [job_from_row(r) for r in rows]
        again = [j.id for j in jobs if rerun(j)]
        lost = [j.id for j in jobs if j.id not in again]
        if again:  # the same guard again: a job another process settled meanwhile is left alone
            await self.db.execute(
                f"UPDATE jobs SET state = '{JobState.QUEUED.value}', next_poll_at = ?, "
                f"progress = NULL, updated_at = ?, {RELEASE} "
                f"WHERE {stranded} AND id IN ({marks(len(again))})",
                (now, now, now, self.owner, *names, *again),
            )
        if not lost:
            return []
        failed = await self.db.fetch(
            f"UPDATE jobs SET state = '{JobState.FAILED.value}', error = ?, error_code = ?, "
            f"completed_at = ?, updated_at = ?, deliver_after = ?, {RELEASE} "
            f"WHERE {stranded} AND id IN ({marks(len(lost))}) RETURNING id",
            (message, "interrupted", now, now, now, now, self.owner, *names, *lost),
        )
        return sorted(str(r[0]) for r in failed)
