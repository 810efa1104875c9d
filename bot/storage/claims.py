"""Claims: the leases that let several processes share the steps of one database."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from bot.jobs.models import Job, JobState
from bot.ports import Leader
from bot.storage.codec import JOB_COLUMNS, job_from_row
from bot.storage.database import DUE, FREE_AT, RELEASE, UNDELIVERED, marks, state_in

if TYPE_CHECKING:
    from bot.storage.database import Database

_LOGGER = logging.getLogger(__name__)


class ClaimsMixin:
    """The lease half of :class:`bot.storage.jobs.SqlJobStore`: claim, renew, release, recover."""

    db: Database
    owner: str

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

    def leader(self, name: str) -> Leader:
        """The lock named ``name`` (one holder across the processes on this database)."""
        return self.db.leader(name)

    async def watch(self, wake: Callable[[], None]) -> None:
        """Wake this process when another one creates a job or finishes a step."""
        await self.db.listen(wake)

    def _pl(self, names: Sequence[str]) -> str:
        return f"{self.db.dialect.platform} IN ({marks(len(names))})"

    # -- claims -----------------------------------------------------------------------------

    async def claim(
        self, now: float, platforms: Iterable[str], limit: int, lease: float
    ) -> list[Job]:
        """Lease up to ``limit`` due steps for this owner: replies first, then submits and
        polls, each soonest first (see :class:`bot.ports.JobStore`)."""
        names = list(platforms)
        jobs: list[Job] = []
        for where, order in ((UNDELIVERED, "deliver_after"), (DUE, "next_poll_at")):
            want = limit - len(jobs)
            if not names or want <= 0:
                break
            picked = (
                f"SELECT id FROM jobs WHERE {where} AND {order} <= ? AND {FREE_AT} "
                f"AND {self._pl(names)} ORDER BY {order} LIMIT ?{self.db.dialect.skip_locked}"
            )
            rows = await self.db.fetch(
                f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ({picked}) "
                f"RETURNING {JOB_COLUMNS}",
                (self.owner, now + lease, now, now, *names, want),
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

    async def next_wakeup(self, platforms: Iterable[str]) -> float | None:
        """The earliest time a poll, a submit or a delivery may become claimable."""
        names = list(platforms)
        at = "MIN(CASE WHEN lease_until > {0} THEN lease_until ELSE {0} END)"
        sql = (
            f"SELECT MIN(t) FROM (SELECT {at.format('next_poll_at')} AS t FROM jobs "
            f"WHERE {DUE} AND {self._pl(names)} "
            f"UNION ALL SELECT {at.format('deliver_after')} FROM jobs WHERE {UNDELIVERED} "
            f"AND {self._pl(names)}) AS w"
        )
        rows = await self.db.fetch(sql, [*names, *names])
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def recover_interrupted(
        self, now: float, message: str, platforms: Iterable[str]
    ) -> list[str]:
        """Fail every job of these platforms left SUBMITTING by a process that died (its lease
        expired; never this process's own): resubmitting could pay twice."""
        names = list(platforms)
        if not names:
            return []
        rows = await self.db.fetch(
            f"UPDATE jobs SET state = '{JobState.FAILED.value}', error = ?, error_code = ?, "
            f"completed_at = ?, updated_at = ?, deliver_after = ?, {RELEASE} "
            f"WHERE {state_in([JobState.SUBMITTING])} AND {FREE_AT} "
            f"AND (lease_owner IS NULL OR lease_owner != ?) AND {self._pl(names)} RETURNING id",
            (message, "interrupted", now, now, now, now, self.owner, *names),
        )
        return sorted(str(r[0]) for r in rows)
