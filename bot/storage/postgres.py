"""PostgreSQL backend on asyncpg: a pool sized from the job concurrency, LISTEN/NOTIFY wake-ups,
migrations under an advisory lock, and statements retried across a lost connection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import asyncpg.exceptions as pgerr

from bot.jobs.leader import Leader
from bot.jobs.poller import IN_STEP
from bot.model.errors import BotError
from bot.model.job import Admission, Blob, Job, NewJob
from bot.storage.codec import Row, job_from_row
from bot.storage.database import Dialect, DuplicateKey, Executor
from bot.storage.jobs import SqlJobStore
from bot.storage.postgres_create import (
    ADMIT_TRIES,
    admit_function,
    admitted,
    create_params,
    create_statement,
    expected_activity,
)
from bot.storage.postgres_schema import MIGRATIONS
from bot.storage.usage import activity_from

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

POSTGRES = Dialect(
    name="postgres",
    json_text=lambda col, key: f"({col}::jsonb ->> '{key}')",
    json_number=lambda col, key: f"(({col}::jsonb ->> '{key}')::double precision)",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    lock_key="SELECT pg_advisory_xact_lock(hashtext(?))",
    wake="pg_notify('voicebot_jobs', '')",
)
CHANNEL = "voicebot_jobs"  # the one in POSTGRES.wake
_OTHERS = 4  # connections for whatever is not a job step, on top of the steps' pool_size
ADMIT = admit_function(POSTGRES)
MIGRATION_LOCK = 0x766F6963  # "voic": serialises migrations of every process on this database
# A lost connection (server restart, failover, network blip) or a transaction the server chose
# to abort: the statement is run again on a fresh connection. Every write is a guarded
# transition, so a replay after an unseen commit changes nothing (it reports "not moved").
TRANSIENT: tuple[type[BaseException], ...] = (
    pgerr.PostgresConnectionError,
    pgerr.CannotConnectNowError,
    pgerr.AdminShutdownError,
    pgerr.CrashShutdownError,
    pgerr.TooManyConnectionsError,
    pgerr.DeadlockDetectedError,
    pgerr.SerializationError,
    pgerr.InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


@functools.lru_cache(maxsize=512)
def to_dollar(sql: str) -> str:
    """``?`` placeholders → ``$1, $2, …`` (our SQL has no ``?`` inside literals)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _count(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Conn:
    """Statements on one connection (inside a transaction)."""

    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:  # an INSERT … RETURNING comes through here too
            return list(await self._conn.fetch(to_dollar(sql), *params))
        except pgerr.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            return _count(await self._conn.execute(to_dollar(sql), *params))
        except pgerr.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc


class PostgresDatabase:
    """A connection pool on one PostgreSQL database, shared by every process of the bot."""

    dialect = POSTGRES

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], url: str, retry_for: float = 60.0
    ) -> None:
        self._pool = pool
        self._url = url
        self.where = redacted(url)
        self._retry_for = retry_for
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._wake: Callable[[], None] | None = None
        self._closed = False
        # Whoever is not a job step (creating jobs, chat commands) shares a few connections:
        # a burst of new jobs would otherwise queue ahead of the steps that finish the jobs
        # already there (the pool serves in order of asking).
        self._others = asyncio.Semaphore(_OTHERS)

    def _lane(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext() if IN_STEP.get() else self._others

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> PostgresDatabase:
        """Connect (retrying while the server starts) and migrate under the advisory lock."""
        size = max(2, pool_size) + _OTHERS
        try:
            pool = await _retry(
                lambda: asyncpg.create_pool(
                    url, min_size=1, max_size=size, command_timeout=60, reset=_keep_session
                ),
                30.0,
                redacted(url),
            )
        except TRANSIENT as exc:
            raise BotError(f"cannot connect to PostgreSQL at {redacted(url)}: {exc}") from exc
        db = cls(pool, url)
        await db._migrate()
        return db

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Transaction-scoped: released at commit, or by the server if this process dies.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS voicebot_schema (version INTEGER NOT NULL)"
            )
            version = await conn.fetchval("SELECT MAX(version) FROM voicebot_schema") or 0
            if version > len(MIGRATIONS):
                raise BotError(
                    f"{self.where}: database schema v{version} is newer than this voicebot "
                    f"(v{len(MIGRATIONS)}); upgrade voicebot"
                )
            for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
                _LOGGER.info("migrating %s to schema v%d", self.where, target)
                await conn.execute(script)
                await conn.execute("INSERT INTO voicebot_schema (version) VALUES ($1)", target)
            # This version's own admission function (named by its body: see postgres_create).
            await conn.execute(ADMIT[1])

    async def _retrying(self, run: Callable[[], Awaitable[T]]) -> T:
        return await _retry(run, self._retry_for, self.where)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of one statement (retried on a lost connection)."""

        async def run() -> list[Row]:
            async with self._lane(), self._pool.acquire() as conn:
                return await _Conn(conn).fetch(sql, params)

        return await self._retrying(run)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the rows it changed (retried on a lost connection)."""

        async def run() -> int:
            async with self._lane(), self._pool.acquire() as conn:
                return await _Conn(conn).execute(sql, params)

        return await self._retrying(run)

    async def transact(self, body: Callable[[Executor], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction, run again whole if the connection dropped."""

        async def run() -> T:
            async with self._lane(), self._pool.acquire() as conn, conn.transaction():
                return await body(_Conn(conn))

        return await self._retrying(run)

    def lock_runner(self) -> bool:
        """Any number of ``voicebot run`` processes may share a PostgreSQL database (their
        leases expire on their own when one dies)."""
        return False

    def leader(self, name: str) -> Leader:
        """A session advisory lock on a connection of its own (see :class:`PgLeader`)."""
        return PgLeader(self._url, name)

    def notify(self) -> str | None:
        """Wakes every listening process when the transaction that runs it commits."""
        return f"NOTIFY {CHANNEL}"

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on every NOTIFY, on a connection of its own, reconnected when lost."""
        self._wake = wake
        await self._retrying(self._connect_listener)

    async def _connect_listener(self) -> None:
        conn = await asyncpg.connect(self._url)
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_listener_lost)
        self._listener = conn

    def _on_notify(self, *_: object) -> None:
        if self._wake is not None:
            self._wake()

    def _on_listener_lost(self, _: object) -> None:
        if self._closed:
            return
        _LOGGER.warning("PostgreSQL notification connection lost; reconnecting")
        self._listener = None
        self._listen_task = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        await self._retrying(self._connect_listener)
        if self._wake is not None:
            self._wake()  # anything created while deaf is found by the next claim

    async def close(self) -> None:
        """Close the listener and the pool."""
        self._closed = True
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listen_task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        await self._pool.close()


async def _keep_session(_conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What the pool does to a connection given back: nothing beyond asyncpg's own rollback of
    an open transaction. Its default also sends ``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL`` and
    ``pg_advisory_unlock_all()``: one more round trip for every statement, undoing state these
    connections never hold (locks are transaction-scoped, listening and the leader locks use
    connections of their own, nothing is SET)."""


_LOST: tuple[type[BaseException], ...] = (TimeoutError, *TRANSIENT)
"""What a check of a held lock's connection may raise when the connection is gone."""


class PgLeader:
    """One holder at a time across processes: ``pg_try_advisory_lock`` on a dedicated
    connection. The server drops the lock with the connection, so a holder that dies (or loses
    its connection) frees it at once; standbys try every ``every`` seconds. The holder hears of
    its connection closing at once (a server restart closes it before the server can grant the
    lock again) and also checks it every ``every`` seconds (a connection that died silently), so
    it stops acting as leader before a standby can start."""

    def __init__(self, url: str, name: str, every: float = 2.0) -> None:
        self._url = url
        self._key = zlib.crc32(f"voicebot:{name}".encode())
        self._name = name
        self._every = every
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._closed = asyncio.Event()

    async def try_acquire(self) -> bool:
        """One attempt (False also when the database cannot be reached)."""
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._url)
                self._closed = closed = asyncio.Event()
                self._conn.add_termination_listener(lambda _conn: closed.set())
            if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                _LOGGER.info("leader lock %r: held by this process", self._name)
                return True
        except TRANSIENT as exc:
            _LOGGER.warning("leader lock %r: database unavailable (%s)", self._name, exc)
            await self._drop()
        return False

    async def acquire(self) -> None:
        """Wait until this process holds the lock (retrying through server outages)."""
        waiting = False
        while not await self.try_acquire():
            if not waiting:
                _LOGGER.info("leader lock %r: held elsewhere; standing by", self._name)
                waiting = True
            await asyncio.sleep(self._every)

    async def wait_lost(self) -> None:
        """Return once the lock's connection is gone (the server released the lock): as soon
        as it closes, or when a check finds it dead or unanswering."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self._every)
            if self._conn is None:
                return
            if self._closed.is_set() or self._conn.is_closed():
                _LOGGER.warning("leader lock %r: lost (its connection closed)", self._name)
                await self._drop()
                return
            try:
                await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self._every * 2)
            except _LOST as exc:
                _LOGGER.warning("leader lock %r: lost (%s)", self._name, exc or "no answer")
                await self._drop()
                return

    async def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def release(self) -> None:
        """Close the connection: the server releases the lock with it."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 5.0)
            await self._drop()


async def _retry(run: Callable[[], Awaitable[T]], retry_for: float, where: str) -> T:
    """Run ``run``, again after transient failures (capped backoff) for up to ``retry_for`` s."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + retry_for
    delay = 0.05
    while True:
        try:
            return await run()
        except TRANSIENT as exc:
            if loop.time() + delay > give_up:
                raise
            _LOGGER.warning("PostgreSQL at %s unavailable (%s); retrying", where, exc)
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


class PostgresJobStore(SqlJobStore):
    """The job store on a PostgreSQL database (several processes may share it)."""

    db: PostgresDatabase

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int = 10, owner: str | None = None
    ) -> PostgresJobStore:
        """Connect to ``url`` and migrate."""
        return cls(await PostgresDatabase.open(url, pool_size=pool_size), owner)

    async def _create_once(
        self,
        new: NewJob,
        row: Sequence[Any],
        blobs: Sequence[tuple[str, Blob | None]],
        admit: Admission | None,
    ) -> Job:
        """One statement, one round trip (see :mod:`bot.storage.postgres_create`); again with
        the activity it read when that was not the expected one and still passes the limits."""
        present = [(role, blob) for role, blob in blobs if blob is not None]
        sql = create_statement(ADMIT[0], [r for r, _ in present], POSTGRES.wake)
        expected = expected_activity(admit)
        for _ in range(ADMIT_TRIES):
            params = create_params(
                row, new.unique_key, new.origin, admit, expected, [b for _, b in present]
            )
            [got] = await self.db.fetch(sql, params)
            if admitted(got):
                return job_from_row(got)
            assert admit is not None  # without limits the insert has no condition
            admit.check(activity_from(got["admit_act"]))  # raises to refuse
            expected = list(got["admit_act"])
        # The user's activity kept moving under us: one transaction, as other backends do.
        return await super()._create_once(new, row, blobs, admit)
