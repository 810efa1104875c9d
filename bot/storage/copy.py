"""``voicebot db copy``: move every row (jobs, audio, settings, speeds) between two databases."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bot.model.errors import BotError
from bot.storage import is_postgres, open_store, sqlite_path
from bot.storage.codec import BLOB_COLUMNS, JOB_COLUMNS, SPEED_COLUMNS
from bot.storage.database import Executor, marks
from bot.storage.jobs import SqlJobStore
from bot.storage.parts import PART_ALL_COLUMNS

_LOGGER = logging.getLogger(__name__)

# Table, its columns, the key that orders a batched read. Parents before children (blobs
# reference jobs); the usage rollup follows the inserted jobs by itself (triggers).
TABLES: tuple[tuple[str, Sequence[str], tuple[str, ...]], ...] = (
    ("jobs", [c.strip() for c in JOB_COLUMNS.split(",")], ("id",)),
    ("job_blobs", BLOB_COLUMNS, ("job_id", "role")),
    ("job_parts", PART_ALL_COLUMNS, ("job_id", "idx")),
    ("chat_settings", ("platform", "chat_id", "data", "updated_at"), ("platform", "chat_id")),
    ("user_settings", ("platform", "user_id", "data", "updated_at"), ("platform", "user_id")),
    (
        "speed_stats",
        ("provider", "model", "kind", *SPEED_COLUMNS, "updated_at"),
        ("provider", "model", "kind"),
    ),
)
BATCH = 500


async def copy_database(source: str | Path, target: str | Path) -> dict[str, int]:
    """Copy every row from ``source`` to the empty database ``target`` (either a SQLite path or
    URL, or a ``postgresql://`` URL); both are migrated to the current schema first. Leases are
    not carried over (no process of the old install runs steps in the new one).

    Returns:
        Rows copied per table.

    Raises:
        BotError: the source file does not exist, or the target already holds data (nothing is
            overwritten).
    """
    if not is_postgres(str(source)) and not sqlite_path(source).is_file():
        # Opening would create an empty database: a mistyped path would "copy" nothing.
        raise BotError(f"{source}: no such SQLite database file")
    src = await open_store(source)
    try:
        dst = await open_store(target)
        try:
            for table, _, _ in TABLES:
                rows = await dst.db.fetch(f"SELECT COUNT(*) FROM {table}")
                if int(rows[0][0]):
                    raise BotError(
                        f"{dst.db.where} is not empty ({table} has rows); refusing to overwrite it"
                    )
            return {table: await _copy(src, dst, table, cols, key) for table, cols, key in TABLES}
        finally:
            await dst.close()
    finally:
        await src.close()


async def _copy(
    src: SqlJobStore, dst: SqlJobStore, table: str, cols: Sequence[str], key: tuple[str, ...]
) -> int:
    """Copy one table in batches read in key order (keyset: each read starts past the last)."""
    names = ", ".join(cols)
    insert = f"INSERT INTO {table} ({names}) VALUES ({marks(len(cols))})"
    lease = (cols.index("lease_owner"), cols.index("lease_until")) if table == "jobs" else ()
    order = ", ".join(key)
    copied, last = 0, None
    while True:
        after = "" if last is None else f"WHERE ({order}) > ({marks(len(key))}) "
        rows = await src.db.fetch(
            f"SELECT {names} FROM {table} {after}ORDER BY {order} LIMIT ?", (*(last or ()), BATCH)
        )
        if not rows:
            return copied
        values = [[bytes(v) if isinstance(v, memoryview) else v for v in row] for row in rows]
        for row in values:
            for i in lease:
                row[i] = None

        async def body(tx: Executor, values: list[list[object]] = values) -> None:
            for row in values:
                await tx.execute(insert, row)

        await dst.db.transact(body)
        copied += len(rows)
        last = tuple(rows[-1][k] for k in key)
        _LOGGER.info("copied %d rows of %s", copied, table)
