"""Chat settings, learned speeds and the usage queries, shared by every SQL backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot.model.job import ACTIVE_STATES, Activity, JobKind
from bot.model.speech import Origin
from bot.storage.codec import (
    SPEED_COLUMNS,
    Row,
    settings_from_row,
    settings_row,
    speed_from_row,
    speed_row,
    usage_from_row,
)
from bot.storage.database import Dialect, Executor, marks, state_in

if TYPE_CHECKING:
    from bot.storage.database import Database


class Usage:
    """Chat settings, learned speeds, limits' activity and usage reports; composed into
    :class:`bot.storage.jobs.SqlJobStore`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- chat settings ----------------------------------------------------------------------

    async def get_settings(self, platform: str, chat_id: str) -> dict[str, Any]:
        """The stored settings of a chat (empty when never changed)."""
        rows = await self.db.fetch(
            "SELECT data FROM chat_settings WHERE platform = ? AND chat_id = ?",
            (platform, chat_id),
        )
        return settings_from_row(rows[0][0]) if rows else {}

    async def put_settings(
        self, platform: str, chat_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a chat's settings, replacing the previous ones."""
        await self.db.execute(
            "INSERT INTO chat_settings (platform, chat_id, data, updated_at) VALUES (?,?,?,?) "
            "ON CONFLICT (platform, chat_id) DO UPDATE SET data = excluded.data, "
            "updated_at = excluded.updated_at",
            (platform, chat_id, settings_row(data), now),
        )

    async def get_user_settings(self, platform: str, user_id: str) -> dict[str, Any]:
        """A person's own settings (empty when never changed)."""
        rows = await self.db.fetch(
            "SELECT data FROM user_settings WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        )
        return settings_from_row(rows[0][0]) if rows else {}

    async def get_preferences(
        self, platform: str, chat_id: str, user_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A chat's and a person's stored settings, read together in one round trip."""
        rows = await self.db.fetch(
            "SELECT 'chat', data FROM chat_settings WHERE platform = ? AND chat_id = ? "
            "UNION ALL "
            "SELECT 'user', data FROM user_settings WHERE platform = ? AND user_id = ?",
            (platform, chat_id, platform, user_id),
        )
        found = {str(kind): settings_from_row(data) for kind, data in rows}
        return found.get("chat", {}), found.get("user", {})

    async def put_user_settings(
        self, platform: str, user_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a person's own settings, replacing the previous ones."""
        await self.db.execute(
            "INSERT INTO user_settings (platform, user_id, data, updated_at) VALUES (?,?,?,?) "
            "ON CONFLICT (platform, user_id) DO UPDATE SET data = excluded.data, "
            "updated_at = excluded.updated_at",
            (platform, user_id, settings_row(data), now),
        )

    # -- learned provider speed -------------------------------------------------------------

    async def load_speed_stats(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """Every saved speed fit, keyed by (provider, model, kind)."""
        rows = await self.db.fetch(
            f"SELECT provider, model, kind, {', '.join(SPEED_COLUMNS)} FROM speed_stats"
        )
        return dict(speed_from_row(tuple(r)) for r in rows)

    async def save_speed_stats(
        self, key: tuple[str, str, str], values: Mapping[str, float], now: float
    ) -> None:
        """Insert or replace one speed fit."""
        columns = ", ".join(SPEED_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in (*SPEED_COLUMNS, "updated_at"))
        await self.db.execute(
            f"INSERT INTO speed_stats (provider, model, kind, {columns}, updated_at) "
            f"VALUES ({marks(len(SPEED_COLUMNS) + 4)}) "
            f"ON CONFLICT (provider, model, kind) DO UPDATE SET {updates}",
            (*speed_row(key, values), now),
        )

    # -- limits and usage -------------------------------------------------------------------

    def _activity_query(
        self, platform: str, user_id: str, chat_id: str, started_since: float, day: float
    ) -> tuple[str, list[Any]]:
        return activity_sql(self.db.dialect, platform, user_id, chat_id, started_since, day)

    async def read_activity(
        self, tx: Executor, origin: Origin, started_since: float, day: float
    ) -> Activity:
        """:meth:`activity` on ``tx`` (inside the transaction that creates a job)."""
        sql, params = self._activity_query(
            origin.platform, origin.user_id, origin.chat_id, started_since, day
        )
        [row] = await tx.fetch(sql, params)
        return activity_from(row)

    async def activity(
        self, platform: str, user_id: str, chat_id: str, *, started_since: float, day: float
    ) -> Activity:
        """What the limits look at, for one user and chat, in one query (see :class:`Activity`).

        Each part is a subquery on the ``jobs_user`` or ``jobs_chat`` index.
        """
        origin = Origin(platform=platform, chat_id=chat_id, user_id=user_id)
        return await self.read_activity(self.db, origin, started_since, day)

    async def usage(self, since: float, platform: str | None = None) -> list[dict[str, Any]]:
        """Per user and chat, over the UTC days from the one containing ``since``: jobs, audio
        seconds, characters, cost. Read from the daily rollup (``usage_daily``), which triggers
        keep equal to the jobs table's sums, so it costs days × users, not jobs."""
        where = "day >= ?" + (" AND platform = ?" if platform else "")
        day = (since // 86400) * 86400
        params: tuple[Any, ...] = (day, platform) if platform else (day,)
        sql = (
            "SELECT platform, chat_id, user_id, SUM(jobs), SUM(audio_seconds), SUM(chars), "
            f"SUM(cost), MAX(currency) FROM usage_daily WHERE {where} "
            "GROUP BY platform, chat_id, user_id HAVING SUM(jobs) > 0 "
            "ORDER BY SUM(cost) DESC, SUM(jobs) DESC"
        )
        return [usage_from_row(tuple(r)) for r in await self.db.fetch(sql, params)]

    async def job_counts(self) -> list[tuple[str, str, str, int]]:
        """``(state, kind, provider, count)`` over every stored job (for /metrics), from the
        counts that triggers keep (``job_counts``): a few rows, however many jobs are stored."""
        rows = await self.db.fetch(
            "SELECT state, kind, provider, SUM(jobs) FROM job_counts "
            "GROUP BY state, kind, provider HAVING SUM(jobs) <> 0"
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def activity_sql(
    d: Dialect, platform: str, user_id: str, chat_id: str, started_since: object, day: object
) -> tuple[str, list[Any]]:
    """The one query of :class:`Activity`'s seven figures (PostgreSQL also runs it in a
    server-side function, after the limits' locks: see :mod:`bot.storage.postgres_create`)."""
    paid = f"{d.json_text('options', 'reused_from')} IS NULL"
    seconds = f"COALESCE(SUM(CASE WHEN kind = '{JobKind.STT.value}' THEN input_duration END), 0)"
    chars = f"COALESCE(SUM({d.json_number('options', 'chars')}), 0)"
    active = state_in(ACTIVE_STATES)
    user = "FROM jobs WHERE platform = ? AND user_id = ?"
    chat = "FROM jobs WHERE platform = ? AND chat_id = ?"
    u, c = (platform, user_id), (platform, chat_id)
    parts = (
        (f"SELECT COUNT(*) {user} AND created_at >= ? AND {paid}", (*u, started_since)),
        (f"SELECT COUNT(*) {user} AND {active}", u),
        (f"SELECT COUNT(*) {chat} AND {active}", c),
        (f"SELECT {seconds} {user} AND created_at >= ? AND {paid}", (*u, day)),
        (f"SELECT {chars} {user} AND created_at >= ? AND {paid}", (*u, day)),
        (f"SELECT {seconds} {chat} AND created_at >= ? AND {paid}", (*c, day)),
        (f"SELECT {chars} {chat} AND created_at >= ? AND {paid}", (*c, day)),
    )
    sql = "SELECT " + ", ".join(f"({q})" for q, _ in parts)
    return sql, [p for _, ps in parts for p in ps]


def activity_from(row: Row | Sequence[Any]) -> Activity:
    """The :class:`Activity` of :func:`activity_sql`'s seven figures."""
    return Activity(
        started=int(row[0]),
        user_active=int(row[1]),
        chat_active=int(row[2]),
        user_seconds=float(row[3]),
        user_chars=int(row[4]),
        chat_seconds=float(row[5]),
        chat_chars=int(row[6]),
    )
