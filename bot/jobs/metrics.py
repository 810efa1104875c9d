"""Prometheus metrics of one process: jobs, provider latency, polls per job, deliveries, lag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from bot.model.job import Job, JobState

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_POLL_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The metrics, in a registry of their own (several cores can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Gauge(
            "voicebot_jobs", "Jobs in the database", ["state", "kind", "provider"], registry=r
        )
        self.queue_depth = Gauge(
            "voicebot_queue_depth", "Jobs not yet taken by a provider (queued)", registry=r
        )
        self.provider_latency = Histogram(
            "voicebot_provider_request_seconds",
            "Time of one provider call, failures included",
            ["provider", "kind", "call"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.polls_per_job = Histogram(
            "voicebot_polls_per_job",
            "Status polls an asynchronous job needed until it completed",
            ["provider", "kind"],
            buckets=_POLL_BUCKETS,
            registry=r,
        )
        self.delivery_failures = Counter(
            "voicebot_delivery_failures_total",
            "Replies a chat platform refused (each attempt)",
            ["platform", "permanent"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "voicebot_event_loop_lag_seconds",
            "How late a timer fired: time the event loop was blocked",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.adapter_connected = Gauge(
            "voicebot_adapter_connected",
            "1 while a chat platform is connected",
            ["platform"],
            registry=r,
        )

    def count_audio_cpu(self, read: Callable[[], float]) -> None:
        """Expose ``read()`` (the audio threads' CPU seconds so far) as a counter."""
        self.registry.register(_AudioCpu(read))

    @contextmanager
    def provider_call(self, job: Job, call: str) -> Iterator[None]:
        """Time one provider request (``submit`` or ``poll``) of ``job``."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.provider_latency.labels(job.provider, job.kind.value, call).observe(
                time.monotonic() - started
            )

    def job_completed(self, job: Job) -> None:
        """``job`` (as it was before its last poll) was found complete by that poll."""
        self.polls_per_job.labels(job.provider, job.kind.value).observe(job.poll_count + 1)

    def delivery_failed(self, platform: str, *, permanent: bool) -> None:
        """A platform refused a reply."""
        self.delivery_failures.labels(platform, str(permanent).lower()).inc()

    def set_job_counts(self, counts: list[tuple[str, str, str, int]]) -> None:
        """Replace the job gauges with ``(state, kind, provider, count)`` rows from the store."""
        self.jobs.clear()
        queued = 0
        for state, kind, provider, count in counts:
            self.jobs.labels(state, kind, provider).set(count)
            if state == JobState.QUEUED.value:
                queued += count
        self.queue_depth.set(queued)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    async def watch_loop(self, every: float = 0.5) -> None:
        """Measure event-loop lag until cancelled (a background task of ``run_bot``)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(every)
            self.loop_lag.observe(max(0.0, loop.time() - started - every))


class _AudioCpu:
    """``voicebot_audio_cpu_seconds_total``, read when scraped."""

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "voicebot_audio_cpu_seconds",
            "CPU time of the audio threads (probing, re-encoding, voice-message clips)",
            value=self._read(),
        )
