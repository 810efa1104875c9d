"""What a SQL backend provides the shared job store: a dialect, statements, transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bot.jobs.leader import Leader
from bot.model.job import ACTIVE_STATES, DUE_STATES, REPLY_STATES, JobState
from bot.storage.codec import Row

T = TypeVar("T")


class DuplicateKey(Exception):
    """An INSERT hit a unique key (e.g. a job id drawn twice)."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few SQL spellings that differ between backends (placeholders are always ``?``)."""

    name: str
    json_text: Callable[[str, str], str]
    """SQL of a JSON field of a TEXT column, as text."""
    json_number: Callable[[str, str], str]
    """SQL of a numeric JSON field of a TEXT column, as a number."""
    platform: str = "platform"
    """How a platform filter names the column (SQLite: ``+platform`` to keep its index choice)."""
    skip_locked: str = ""
    """Appended to a claim's inner SELECT (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
    lock_key: str = ""
    """A query taking a transaction-scoped lock on a text key (SQLite: none needed, its write
    transactions are serial)."""
    wake: str = ""
    """An expression waking every listening process when its statement's transaction commits
    (PostgreSQL: ``pg_notify``). A backend that has one also runs data-modifying ``WITH``
    clauses, so a step's writes and its wake-up go in one statement: one round trip."""


class Executor(Protocol):
    """Runs statements (inside a transaction, or each in its own)."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of a query (or of an UPDATE … RETURNING)."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...


class Database(Executor, Protocol):
    """Owns the connection(s) of one backend; each statement outside :meth:`transact` is atomic.

    Raises:
        DuplicateKey: from :meth:`execute` or :meth:`transact` on a unique-key violation.
    """

    dialect: Dialect
    where: str
    """The database for messages (a path, or a URL without its password)."""

    async def transact(self, body: Callable[[Executor], Awaitable[T]]) -> T:
        """Run ``body`` in one write transaction (retried whole when the connection dropped)."""
        ...

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on :meth:`notify` from any process (no-op where unsupported)."""
        ...

    def lock_runner(self) -> bool:
        """Claim the right to run a bot on this database, or raise BotError naming who has it.

        Returns:
            True when this is the only runner (every lease of its platforms is a dead one's).
        """
        ...

    def leader(self, name: str) -> Leader:
        """The named one-holder lock."""
        ...

    def notify(self) -> str | None:
        """A statement that wakes listeners when its transaction commits (None: unsupported)."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...


class SoleLeader:
    """The :class:`Leader` of a backend with one runner per database: always held."""

    async def acquire(self) -> None:
        """Held at once."""

    async def try_acquire(self) -> bool:
        """Held at once."""
        return True

    async def wait_lost(self) -> None:
        """Never lost."""
        await asyncio.Event().wait()

    async def release(self) -> None:
        """Nothing to release."""


def state_in(states: Iterable[JobState]) -> str:
    """``state IN (…)`` for these states: the one place a state is spelled in SQL."""
    return "state IN (" + ", ".join(f"'{s.value}'" for s in states) + ")"


def marks(n: int) -> str:
    """``?,?,…`` for ``n`` parameters (``NULL`` for none, which matches nothing)."""
    return ",".join("?" * n) or "NULL"


# The SQL vocabulary of job rows (each state spelled once, through state_in).
UNFINISHED = state_in(ACTIVE_STATES)
DUE = state_in(DUE_STATES)
UNDELIVERED = f"{state_in(REPLY_STATES)} AND delivered_at IS NULL AND delivery_error IS NULL"
# A transition by the step that claimed the job, or by anyone when nobody holds it; it ends the
# lease in the same statement.
MINE = "(lease_owner IS NULL OR lease_owner = ?)"
RELEASE = "lease_owner = NULL, lease_until = NULL"
FREE_AT = "(lease_until IS NULL OR lease_until <= ?)"
# A local engine's run lives in the process that started it (``keep_input``: reruns are free).
# Between polls that process stays the job's ``lease_owner`` (``lease_until`` NULL: nothing is
# running), and only it polls the job; another one takes the poll only once it is HOME_GRACE
# seconds overdue (that process died), finds the run gone and runs the job again.
HOME_GRACE = 60.0
KEEP_HOME = "lease_owner = CASE WHEN keep_input <> 0 THEN lease_owner END, lease_until = NULL"
AWAY = "(keep_input <> 0 AND lease_owner IS NOT NULL AND lease_owner <> ?)"
HOME = f"NOT {AWAY} OR next_poll_at <= ?"
