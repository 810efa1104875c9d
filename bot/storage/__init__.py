"""Storage: one :class:`Database` per backend (SQLite, the embedded default, and PostgreSQL) and
the job store composed over it (:class:`bot.storage.jobs.SqlJobStore`)."""

from __future__ import annotations

from pathlib import Path

from bot.model.errors import BotError
from bot.storage.jobs import SqlJobStore


def is_postgres(url: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(target: str | Path) -> Path:
    """The file of a SQLite target: a path, or a ``sqlite:///path`` URL."""
    text = str(target)
    if text.startswith("sqlite://"):
        rest = text.removeprefix("sqlite://")
        if not rest.startswith("/"):
            raise BotError(f"{text!r}: a SQLite URL is sqlite:///relative or sqlite:////absolute")
        return Path(rest[1:])
    return Path(text)


async def open_store(target: str | Path, *, pool_size: int = 10) -> SqlJobStore:
    """Open (and migrate) the job store at ``target``: a ``postgresql://`` URL, a
    ``sqlite:///`` URL or a file path. ``pool_size`` bounds PostgreSQL connections."""
    text = str(target)
    if is_postgres(text):
        try:
            from bot.storage.postgres import PostgresJobStore
        except ModuleNotFoundError as exc:
            if exc.name != "asyncpg":
                raise
            raise BotError(
                "PostgreSQL storage needs asyncpg: pip install 'voicebot[postgres]'"
            ) from exc

        return await PostgresJobStore.open(text, pool_size=pool_size)
    from bot.storage.sqlite import SqliteJobStore

    return await SqliteJobStore.open(sqlite_path(text))
