"""SQLite backend: one sqlite3 connection (WAL) on the event loop; SqliteJobStore on it."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bot.jobs.leader import Leader
from bot.model.errors import BotError
from bot.storage.access import lock_failure, open_failure
from bot.storage.codec import Row
from bot.storage.database import Dialect, DuplicateKey, Executor, SoleLeader
from bot.storage.jobs import SqlJobStore
from bot.storage.sqlite_schema import MIGRATIONS

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE = Dialect(
    name="sqlite",
    json_text=lambda col, key: f"json_extract({col}, '$.{key}')",
    json_number=lambda col, key: f"json_extract({col}, '$.{key}')",
    # The ``+`` keeps SQLite on the state/time partial indexes rather than ``jobs_user``.
    platform="+platform",
)


class _Conn:
    """Statements on the connection, the caller holding the lock."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise _duplicate(exc) from exc


def _duplicate(exc: sqlite3.IntegrityError) -> Exception:
    return DuplicateKey(str(exc)) if "UNIQUE" in str(exc) else exc


class SqliteDatabase:
    """One SQLite file over a single sqlite3 connection in autocommit mode, called on the loop.

    Every single statement is atomic by itself; :meth:`transact` wraps several in
    ``BEGIN IMMEDIATE``. One lock serialises everything on the shared connection, so no read runs
    inside another coroutine's open transaction.

    Why on the loop and not on a thread (aiosqlite): a job step's statements take tens of
    microseconds in WAL mode with ``synchronous=NORMAL`` (a commit appends to the WAL without an
    fsync; only checkpoints sync), while each hop to a database thread (self-pipe wake-up, future,
    queue) cost more than the statement itself: measured in the benchmark, the hop was the cost
    per step. One ``voicebot run`` owns the file (:meth:`lock_runner`), so no other writer makes
    the loop wait on ``busy_timeout`` in normal operation (a CLI writer at most briefly).
    """

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._raw = _Conn(conn)
        self.path = path
        self.where = str(path)
        self._lock = asyncio.Lock()
        self._run_lock: int | None = None

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        """Open (creating with mode 0600 and migrating) the database at ``path``.

        Raises:
            BotError: it cannot be opened; one line naming the path and the permission missing
                (a folder the process may not write, a file it may not read...).
        """
        path = Path(path)
        try:
            return cls._open(path)
        except (OSError, sqlite3.Error) as exc:
            raise BotError(open_failure(path, exc)) from exc

    @classmethod
    def _open(cls, path: Path) -> SqliteDatabase:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            # Create it private before SQLite does: transcripts and chat ids are personal data.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        # The loop's thread only, but tests and tools may open it in one thread and use it in
        # another (asyncio.run in a worker thread): the lock below keeps calls serial.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash (SIGKILL); only power loss may drop the
            # newest commits, and every transition is safe to replay from an older state.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            db = cls(conn, path)
            db._migrate()
        except BaseException:
            conn.close()
            raise
        return db

    def _migrate(self) -> None:
        row = self._conn.execute("PRAGMA user_version").fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path}: database schema v{version} is newer than this voicebot "
                f"(v{len(MIGRATIONS)}); upgrade voicebot"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            _LOGGER.info("migrating %s to schema v%d", self.path, target)
            self._conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={target};\nCOMMIT;"
            )

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of one statement (reads take the lock too: see the class docstring)."""
        async with self._lock:
            return await self._raw.fetch(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (atomic by itself); the rows it changed."""
        async with self._lock:
            return await self._raw.execute(sql, params)

    async def transact(self, body: Callable[[Executor], Awaitable[T]]) -> T:
        """Run ``body`` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back if it raises)."""
        async with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = await body(self._raw)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    async def listen(self, wake: Callable[[], None]) -> None:
        """Nothing to listen to: one ``voicebot run`` per file (see :meth:`lock_runner`)."""

    def notify(self) -> str | None:
        """No cross-process notifications in SQLite."""
        return None

    def leader(self, name: str) -> Leader:
        """Always this process's: one runner per file (see :meth:`lock_runner`)."""
        return SoleLeader()

    def lock_runner(self) -> bool:
        """Make this the one ``voicebot run`` process on this file, or refuse clearly.

        Several processes would each receive the same chat updates; one file serves one bot
        process (PostgreSQL serves several). The lock is an ``flock`` on ``<file>.run.lock``,
        released by the kernel when the process dies, so a crash never leaves it behind.

        Raises:
            BotError: another process holds it (the message names the file and its pid).
        """
        lock_path = Path(f"{self.path}.run.lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BotError(lock_failure(lock_path, exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BotError(
                f"{self.path} is already used by a running voicebot (pid {holder}). One SQLite "
                "file serves one `voicebot run`; stop that process, or use PostgreSQL "
                "(storage.url) to run several."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._run_lock = fd
        return True

    async def close(self) -> None:
        """Close the connection (and drop the run lock)."""
        async with self._lock:
            self._conn.close()
        if self._run_lock is not None:
            os.close(self._run_lock)
            self._run_lock = None


class SqliteJobStore(SqlJobStore):
    """The job store on one SQLite file (the embedded default)."""

    db: SqliteDatabase

    @classmethod
    async def open(cls, path: Path | str, owner: str | None = None) -> SqliteJobStore:
        """Open (creating and migrating) the database at ``path``."""
        return cls(await SqliteDatabase.open(path), owner)

    @property
    def path(self) -> Path:
        """Where the database file lives."""
        return self.db.path
