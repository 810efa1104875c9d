"""Leader: a named lock one process at a time holds (e.g. the one Telegram poller per token)."""

from __future__ import annotations

from typing import Protocol


class Leader(Protocol):
    """A named lock that one process at a time holds (e.g. the one Telegram ``getUpdates``
    consumer per token); released by the server when its holder dies."""

    async def acquire(self) -> None:
        """Wait until this process holds the lock."""
        ...

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting.

        Returns:
            True when this process holds the lock.
        """
        ...

    async def wait_lost(self) -> None:
        """Return when the lock was lost (its connection died); :meth:`acquire` again."""
        ...

    async def release(self) -> None:
        """Give the lock up (a standby takes over)."""
        ...
