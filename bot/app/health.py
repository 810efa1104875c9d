"""GET /healthz and GET /metrics for ``voicebot run`` (aiohttp's server, loopback by default)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from bot.app.supervise import AdapterSupervisor
    from bot.jobs.metrics import Metrics

_LOGGER = logging.getLogger(__name__)
_DB_TIMEOUT = 2.0


class _Counts(Protocol):
    """The store's usage queries, of which a scrape reads one."""

    async def job_counts(self) -> list[tuple[str, str, str, int]]:
        """``(state, kind, provider, count)`` rows for the job gauges."""
        ...


class _Database(Protocol):
    """The two reads a probe and a scrape make."""

    async def recent(self, limit: int = 20) -> Sequence[object]:
        """Newest jobs overall first (the probe reads one to see the database answer)."""
        ...

    @property
    def usage(self) -> _Counts:
        """The usage queries (job counts for the gauges)."""
        ...


class _Poller(Protocol):
    """Whether the poller's loop is alive."""

    @property
    def running(self) -> bool:
        """True between the poller's start and stop."""
        ...


class Watched(Protocol):
    """What the health server reads of the running core (the composition root's ``Core``
    has all three; declared here so this module needs nothing of the root's)."""

    @property
    def store(self) -> _Database:
        """The job database."""
        ...

    @property
    def poller(self) -> _Poller:
        """The job poller."""
        ...

    @property
    def metrics(self) -> Metrics:
        """The Prometheus registry /metrics renders."""
        ...


class HealthServer:
    """Answers whether the bot works (adapters connected, database reachable, poller alive)
    and exports the metrics; started and stopped by ``run_bot``."""

    def __init__(self, core: Watched, supervisors: Sequence[AdapterSupervisor]) -> None:
        self.core = core
        self.supervisors = supervisors
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.draining = False
        """Set when a shutdown began: the report says "draining" (503) so no more work comes."""

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free port, then :attr:`port` says which)."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        # A probe or scrape never holds shutdown (it lasts the drain's grace and a few seconds).
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # aiohttp keeps the listening socket there; no public accessor
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        _LOGGER.info("health: serving http://%s:%d/healthz and /metrics", host, self.port)

    async def stop(self) -> None:
        """Stop listening (within about 2 s)."""
        if self._runner is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self._runner.cleanup()
            except TimeoutError:
                _LOGGER.warning("health: server did not stop in time")
            self._runner = None

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """Whether everything is up, and the details."""
        adapters = {
            s.adapter.platform: {"connected": s.connected, "state": s.state, "error": s.error}
            for s in self.supervisors
        }
        database = "ok"
        try:
            async with asyncio.timeout(_DB_TIMEOUT):
                await self.core.store.recent(1)
        except Exception as exc:  # any failure to read is "unreachable" for a probe
            database = f"error: {type(exc).__name__}"
        poller = "alive" if self.core.poller.running else "stopped"
        ok = all(a["connected"] for a in adapters.values()) and database == "ok"
        ok = ok and poller == "alive" and not self.draining
        status = "draining" if self.draining else "ok" if ok else "unhealthy"
        body = {
            "status": status,
            "adapters": adapters,
            "database": database,
            "poller": poller,
        }
        return ok, body

    async def healthz(self, request: web.Request) -> web.Response:
        """200 with a small JSON body when healthy, 503 with the same body otherwise."""
        ok, body = await self.report()
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """The Prometheus text format, job gauges refreshed from the database."""
        try:
            self.core.metrics.set_job_counts(await self.core.store.usage.job_counts())
        except Exception as exc:
            _LOGGER.warning("metrics: cannot count jobs: %s", exc)
        for sup in self.supervisors:
            self.core.metrics.adapter_connected.labels(sup.adapter.platform).set(sup.connected)
        return web.Response(
            body=self.core.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
