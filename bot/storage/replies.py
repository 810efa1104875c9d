"""Replies: what happened to a finished job's answer (delivered, deferred, undeliverable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.model.job import REPLY_STATES
from bot.storage.database import MINE, RELEASE, state_in

if TYPE_CHECKING:
    from bot.storage.database import Database

# A reply is recorded only by the step holding its lease, and only once.
_PENDING = f"delivered_at IS NULL AND {state_in(REPLY_STATES)} AND {MINE}"


class Replies:
    """The delivery marks, each one guarded statement that also ends the step's lease;
    composed into :class:`bot.storage.jobs.SqlJobStore`."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner

    async def _mark(self, sets: str, guard: str, params: Sequence[Any]) -> bool:
        sql = f"UPDATE jobs SET {sets}, {RELEASE} WHERE id = ? {guard}AND {_PENDING}"
        return await self.db.execute(sql, (*params, self.owner)) > 0

    async def mark_delivered(self, job_id: str, message_id: str | None, now: float) -> bool:
        """Record that the platform accepted the reply (once: later calls return False)."""
        return await self._mark(
            "delivered_at = ?, delivery_message_id = ?, updated_at = ?",
            "",
            (now, message_id, now, job_id),
        )

    async def defer_delivery(self, job_id: str, deliver_after: float, now: float) -> bool:
        """Try delivering again later (platform rate limit or outage)."""
        return await self._mark(
            "deliver_after = ?, delivery_attempts = delivery_attempts + 1, updated_at = ?",
            "",
            (deliver_after, now, job_id),
        )

    async def mark_undeliverable(self, job_id: str, reason: str, now: float) -> bool:
        """Give up delivering (bot blocked, chat gone): never retried again."""
        return await self._mark(
            "delivery_error = ?, updated_at = ?",
            "AND delivery_error IS NULL ",
            (reason, now, job_id),
        )
