"""How ``voicebot run`` stops: the first SIGTERM/SIGINT drains, a second cuts the drain short."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.app.health import HealthServer
    from bot.app.supervise import AdapterSupervisor

_LOGGER = logging.getLogger(__name__)


class _Poller(Protocol):
    """The poller's drain (see :meth:`bot.jobs.poller.Poller.stop`)."""

    async def stop(self, timeout: float = 10.0, *, cut: asyncio.Event | None = None) -> int:
        """Stop claiming, let steps in flight finish; how many were cut short."""
        ...


class Drained(Protocol):
    """What the drain stops and closes (the composition root's ``Core``)."""

    @property
    def poller(self) -> _Poller:
        """The job poller."""
        ...

    async def close(self) -> None:
        """Release the HTTP session, the audio threads and the database."""
        ...


@contextlib.contextmanager
def signals_set(
    stop: asyncio.Event,
    cut: asyncio.Event,
    on_signal: Callable[[signal.Signals], None],
    on_second_signal: Callable[[], None],
) -> Iterator[None]:
    """While inside, the first SIGTERM or SIGINT runs ``on_signal`` and sets ``stop`` (the drain
    begins); another one runs ``on_second_signal`` and sets ``cut`` (where the loop can take
    signals)."""
    loop = asyncio.get_running_loop()

    def handler(sig: signal.Signals) -> None:
        if stop.is_set():
            _LOGGER.warning("second signal: cutting the drain short")
            on_second_signal()
            cut.set()
            return
        on_signal(sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def drain(
    core: Drained,
    supervisors: Sequence[AdapterSupervisor],
    tasks: Sequence[asyncio.Task[None]],
    health: HealthServer | None,
    *,
    grace: float,
    cut: asyncio.Event,
) -> None:
    """Stop taking work at once, let the steps in flight finish and deliver for up to ``grace``
    seconds, then release what is left and close. Every step has its own time budget (in all
    about ``grace`` + 9 s), so no adapter or database state can hold the process.

    ``/healthz`` answers "draining" (503) from the start, so a load balancer sends no more.
    The adapters stop receiving and give up their platform locks first (a standby process
    takes over at once) but stay connected: the replies of the steps in flight go out.
    """
    began = time.monotonic()
    if health is not None:
        health.draining = True
    for task in tasks:  # supervisors' loops first: the end of intake is no lost connection
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)
    if supervisors:
        await asyncio.gather(*(s.quiesce(timeout=2.0) for s in supervisors))
    _LOGGER.info("draining: no new work taken; finishing the steps in flight")
    left = grace - (time.monotonic() - began)
    cut_short = await core.poller.stop(timeout=left, cut=cut)
    await _close(core, supervisors, health)
    _LOGGER.info(
        "stopped %.1f s after the signal; %d step(s) cut short", time.monotonic() - began, cut_short
    )


async def _close(
    core: Drained, supervisors: Sequence[AdapterSupervisor], health: HealthServer | None
) -> None:
    if supervisors:
        await asyncio.gather(*(s.stop(timeout=4.0) for s in supervisors))
    if health is not None:
        await health.stop()
    try:
        async with asyncio.timeout(2.0):
            await core.close()
    except TimeoutError:
        _LOGGER.warning("closing the database and HTTP session took too long")
