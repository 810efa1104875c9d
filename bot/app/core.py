"""Composition root: one HTTP session, store, providers, worker, poller and service; run_bot."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from bot.app.health import HealthServer
from bot.app.shutdown import drain, signals_set
from bot.app.supervise import AdapterSupervisor
from bot.audio.pool import AudioPool
from bot.config.load import Config
from bot.jobs.delivery import DEFAULT_LEASE, Delivery, Reply
from bot.jobs.links import LinkRunner
from bot.jobs.metrics import Metrics
from bot.jobs.poller import Poller
from bot.jobs.schedule import PredictiveSchedule
from bot.jobs.worker import JobWorker
from bot.links import LinkFetcher
from bot.model.job import Job
from bot.providers.registry import build_providers, build_text_generator
from bot.service.voice import VoiceService
from bot.storage import open_store
from bot.storage.jobs import SqlJobStore

_LOGGER = logging.getLogger(__name__)


class ChatAdapter(Protocol):
    """A chat platform: takes messages in, and (as a Deliverer) puts job results back."""

    platform: str

    async def start(self) -> None:
        """Connect and begin taking messages."""
        ...

    async def stop(self) -> None:
        """Stop taking messages and disconnect."""
        ...

    async def quiesce(self) -> None:
        """Stop taking messages and give up the platform's lock at once (a standby process
        takes over), staying connected so that replies still go out until :meth:`stop`."""
        ...

    async def wait_disconnected(self) -> None:
        """Return, or raise the cause, once the platform connection has ended (see
        :class:`bot.app.supervise.AdapterSupervisor`, which then reconnects)."""
        ...

    @property
    def standby(self) -> bool:
        """True while another process on the same database takes this platform's messages
        (it holds the platform's lock); this one stays connected to deliver and takes over
        when that process dies."""
        ...

    async def deliver(self, reply: Reply) -> str | None:
        """See :class:`bot.jobs.delivery.Deliverer`."""
        ...

    async def progress(self, job: Job) -> None:
        """See :class:`bot.jobs.delivery.Deliverer`."""
        ...


class RedactingFilter(logging.Filter):
    """Replaces every configured secret (tokens, API keys) in log records with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a key containing another key is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret masked."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def config_secrets(config: Config) -> list[str]:
    """Every secret the configuration holds."""
    found = [p.api_key or "" for p in config.providers.values()]
    found += [p.token or "" for p in config.platforms.values()]
    if config.storage.url:
        found.append(urlsplit(config.storage.url).password or "")
    return [s for s in found if s]


def setup_logging(config: Config | None, level: str = "INFO") -> None:
    """Log to stderr through the redacting filter (on the handler, so every logger is covered)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(config_secrets(config) if config else []))
    root.addHandler(handler)
    root.setLevel(config.log_level if config else level)
    for noisy in ("httpx", "httpcore", "discord.gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Core:
    """Owns the process-wide resources; created by :meth:`open`, released by :meth:`close`."""

    def __init__(
        self,
        config: Config,
        session: aiohttp.ClientSession,
        store: SqlJobStore,
        *,
        clock: Callable[[], float] = time.time,
        steady: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self.store = store
        self.clock = clock
        voices = {config.tts.provider: config.tts.voice}  # a local engine fetches this one
        self.stt, self.tts = build_providers(config.providers, session, voices)
        self.llm = build_text_generator(config.providers, config.llm.provider, session)
        self.schedule = PredictiveSchedule(store.usage, clock, cap=config.jobs.max_poll_interval)
        self.audio = AudioPool(config.jobs.audio_threads)
        # One fetcher for every link (its own connections: each one checked and pinned to the
        # address it resolved to, so it never shares the providers' session).
        self.links = LinkFetcher(config.links)
        self.metrics = Metrics()
        self.metrics.count_audio_cpu(lambda: self.audio.cpu_seconds)
        self.service = VoiceService(
            store,
            config,
            settings=store.usage,
            usage=store.usage,
            recordings=store.kept,
            stt=self.stt,
            tts=self.tts,
            # The poller is built below, with the worker that needs the service's buttons.
            wake=lambda: self.poller.wake(),
            clock=clock,
            eta=self.schedule.eta,
            audio_pool=self.audio,
            fetcher=self.links,
        )
        self.worker = self._worker(store, lease=DEFAULT_LEASE)
        self.poller = Poller(
            store.claims,
            self.worker,
            # One lease length for the claims and the replies sent inline under them.
            lease=DEFAULT_LEASE,
            clock=clock,
            steady=steady,
            concurrency=config.jobs.concurrency,
            max_idle=config.jobs.max_poll_interval,
        )

    def _worker(self, store: SqlJobStore, *, lease: float) -> JobWorker:
        """The worker, handed each store role it calls (steps, parts, replies, recovery) and
        the text buttons the service offers under a transcript."""
        jobs = self.config.jobs
        delivery = Delivery(
            store.replies,
            store.kept,
            store,
            clock=self.clock,
            metrics=self.metrics,
            lease=lease,
            buttons=self.service.text_buttons,
        )
        links = LinkRunner(
            store.steps,
            self.links,
            self.stt,
            check=self.service.links.check_length,
            jobs=jobs,
            audio_pool=self.audio,
            notify=delivery.notify,
            clock=self.clock,
        )
        return JobWorker(
            store.steps,
            parts=store.parts,
            delivery=delivery,
            recovery=store.claims,
            stt=self.stt,
            tts=self.tts,
            clock=self.clock,
            schedule=self.schedule,
            audio_pool=self.audio,
            part_concurrency=jobs.part_concurrency,
            llm=self.llm,
            max_input_tokens=self.config.llm.max_input_tokens,
            metrics=self.metrics,
            links=links,
        )

    @classmethod
    async def open(
        cls,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        steady: Callable[[], float] | None = None,
    ) -> Core:
        """Open the database and the one HTTP session every provider shares. ``steady`` is
        what the poller measures ``clock`` against to notice it being stepped (default: the
        boot-time clock when ``clock`` is the real one, else no watching)."""
        # Every job step may hold a connection, plus the chat commands' reads.
        pool = config.jobs.concurrency + 4
        store = await open_store(config.storage.target, pool_size=pool)
        session = aiohttp.ClientSession(
            headers={"User-Agent": "voicebot/0.1 (+self-hosted)"},
            # aiohttp leaves trust_env off: no proxy variable can silently reroute the API keys.
        )
        try:
            core = cls(config, session, store, clock=clock, steady=steady)
            await store.claims.watch(core.poller.wake)
        except BaseException:
            # e.g. a provider's settings refused at build: release what was opened, or the
            # database thread keeps the process alive after the error is printed.
            await session.close()
            await store.close()
            raise
        await core.schedule.load()
        for note in (config.stt.note, config.tts.note):
            if note:  # a route runs on its fallback: say which, and how to get the configured one
                _LOGGER.log(logging.WARNING if "unavailable" in note else logging.INFO, "%s", note)
        return core

    async def purge_expired(self) -> int:
        """Delete finished jobs older than ``storage.retention_days``; returns how many."""
        before = self.clock() - self.config.storage.retention_days * 86400
        count = await self.store.purge(before)
        if count:
            _LOGGER.info(
                "purged %d job(s) older than %d days", count, self.config.storage.retention_days
            )
        # Recordings kept for "Translate → English" (a local engine's keep_audio_hours).
        dropped = await self.store.kept.drop_recordings(self.clock())
        if dropped:
            _LOGGER.info("dropped %d recording(s) kept for translation", dropped)
        return count

    async def purge_forever(self, every: float = 3600) -> None:
        """Purge at start and then every ``every`` seconds (a background task of ``run_bot``)."""
        while True:
            try:
                await self.purge_expired()
            except Exception:
                _LOGGER.exception("purging old jobs failed")
            await asyncio.sleep(every)

    async def close(self) -> None:
        """Save what was learned; release the session, the audio threads and the database."""
        await self.schedule.flush()
        await self.links.close()
        await self.session.close()
        for provider in {*self.stt.values(), *self.tts.values()}:
            close = getattr(provider, "close", None)  # engines on this machine own threads
            if callable(close):
                close()
        self.audio.close()
        await self.store.close()


AdapterFactory = Callable[[Core], Sequence[ChatAdapter]]


async def run_bot(
    config: Config,
    make_adapters: AdapterFactory,
    *,
    stop: asyncio.Event | None = None,
    on_signal: Callable[[signal.Signals], None] = lambda sig: None,
    on_second_signal: Callable[[], None] = lambda: None,
) -> None:
    """Run adapters and the poller in this event loop until SIGTERM/SIGINT (or ``stop``).

    Each adapter runs under an :class:`AdapterSupervisor`: one platform failing to start, or
    losing its connection, is retried in the background and never stops the other. The first
    signal drains (see :func:`bot.app.shutdown.drain`: no new work, the steps in flight finish
    and deliver for up to ``shutdown.grace_seconds``, then their leases are released); a
    second one cuts the drain short. ``on_signal`` (with the signal) and ``on_second_signal``
    run when they arrive (the CLI arms a hard-exit watchdog and picks its exit code there).
    """
    stop = stop or asyncio.Event()
    cut = asyncio.Event()
    with signals_set(stop, cut, on_signal, on_second_signal):
        core = await Core.open(config)
        supervisors: list[AdapterSupervisor] = []
        tasks: list[asyncio.Task[None]] = []
        health: HealthServer | None = None
        try:
            supervisors += await _start_adapters(core, make_adapters(core))
            tasks += [
                asyncio.create_task(s.run(), name=f"{s.adapter.platform}-supervisor")
                for s in supervisors
            ]
            core.poller.start()
            tasks.append(asyncio.create_task(core.purge_forever(), name="purge"))
            tasks.append(asyncio.create_task(core.metrics.watch_loop(), name="loop-lag"))
            health = await _start_health(core, supervisors)
            await stop.wait()
            _LOGGER.info("shutting down: draining for up to %.0f s", config.shutdown.grace_seconds)
        finally:
            grace = config.shutdown.grace_seconds
            await drain(core, supervisors, tasks, health, grace=grace, cut=cut)


async def _start_adapters(core: Core, adapters: Iterable[ChatAdapter]) -> list[AdapterSupervisor]:
    """Register each adapter with the worker, recover the jobs left running, and supervise each
    adapter (the caller starts the supervisors)."""
    adapters = list(adapters)
    # SQLite: refuse a second runner on this file (named), and take over the leases the
    # previous one left at once; PostgreSQL: several runners share the work.
    await core.store.claims.lock_runner(a.platform for a in adapters)
    for adapter in adapters:
        core.worker.register(adapter.platform, adapter)
    await core.worker.recover(core.clock())
    supervisors = []
    for adapter in adapters:
        # Replies go out only while connected: a platform that is down keeps them waiting
        # instead of burning their delivery attempts (its jobs still run meanwhile).
        core.worker.set_online(adapter.platform, False)
        supervisors.append(
            AdapterSupervisor(
                adapter,
                on_connected=_router(core, adapter, True),
                on_lost=_router(core, adapter, False),
            )
        )
    return supervisors


async def _start_health(
    core: Core, supervisors: Sequence[AdapterSupervisor]
) -> HealthServer | None:
    cfg = core.config.health
    if not cfg.enabled:
        return None
    health = HealthServer(core, supervisors)
    try:
        await health.start(cfg.host, cfg.port)
    except OSError as exc:  # the bot is more important than its probe
        _LOGGER.error(
            "health: cannot listen on %s:%d (%s); set health.port or health.enabled: false",
            cfg.host,
            cfg.port,
            exc.strerror or exc,
        )
        await health.stop()
        return None
    return health


def _router(core: Core, adapter: ChatAdapter, up: bool) -> Callable[[], None]:
    def route() -> None:
        core.worker.set_online(adapter.platform, up)
        if up:
            core.poller.wake()

    return route
