"""When to poll a provider next: fixed backoff, or predicted from the provider's learned speed."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.model.job import Job, JobKind

_LOGGER = logging.getLogger(__name__)


class SpeedStore(Protocol):
    """Where learned provider speeds persist (predictive polling), across restarts."""

    async def load_speed_stats(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """All saved fits keyed by (provider, model, kind)."""
        ...

    async def save_speed_stats(
        self, key: tuple[str, str, str], values: Mapping[str, float], now: float
    ) -> None:
        """Insert or replace one fit (the keys of ``values`` are its fields)."""
        ...


class PollSchedule(Protocol):
    """Decides when to ask a provider about a job next."""

    def first_poll(self, job: Job, min_interval: float) -> float:
        """Seconds from submission to the first poll."""
        ...

    def next_poll(self, job: Job, min_interval: float, retry_after: float | None) -> float:
        """Seconds from now to the next poll, after ``job.poll_count`` earlier polls (and this
        one, which said "not yet")."""
        ...

    def eta(self, job: Job) -> float | None:
        """When the job is expected to be done (epoch seconds), if there is an estimate."""
        ...

    def observe_queue(self, job: Job, position: int | None, now: float) -> None:
        """Learn from a poll that found ``job`` (its state before the poll) not done yet, at
        queue ``position``."""
        ...

    async def observe(self, job: Job, completed_at: float) -> None:
        """Learn from a job the provider finished; ``job`` is its state before the last poll."""
        ...


class BackoffSchedule:
    """Capped exponential backoff with jitter, never under the provider's minimum interval."""

    def __init__(
        self,
        *,
        base: float = 1.0,
        factor: float = 1.5,
        cap: float = 30.0,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._base, self._factor, self._cap = base, factor, cap
        self._jitter, self._rng = jitter, rng

    def _jittered(self, seconds: float) -> float:
        return seconds * (1 + self._jitter * (2 * self._rng() - 1))

    def first_poll(self, job: Job, min_interval: float) -> float:
        return max(min_interval, self._jittered(self._base))

    def next_poll(self, job: Job, min_interval: float, retry_after: float | None) -> float:
        delay = min(self._cap, self._base * self._factor ** (job.poll_count + 1))
        return max(min_interval, retry_after or 0.0, self._jittered(delay))

    def eta(self, job: Job) -> float | None:
        return None

    def observe_queue(self, job: Job, position: int | None, now: float) -> None:
        return None

    async def observe(self, job: Job, completed_at: float) -> None:
        return None


def job_size(job: Job) -> float | None:
    """What processing time scales with: audio seconds (speech in: a transcription, or a
    translation by the speech model) or characters (TTS)."""
    if job.kind is not JobKind.TTS:
        return job.input_duration
    chars = job.options.get("chars")
    return float(chars) if isinstance(chars, (int, float)) else None


@dataclass(slots=True)
class SpeedFit:
    """Exponentially weighted least squares of processing seconds ``y`` on job size ``x``.

    Old observations fade by ``decay`` per new one, so a provider that speeds up or slows down is
    followed within a few jobs. ``dev`` tracks the typical *relative* error of the prediction
    (mean of ``|actual - predicted| / predicted``): processing noise grows with the job.
    """

    sw: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    dev: float = 0.0
    samples: int = 0
    place: float = 0.0  # seconds one queue place takes, learned from reported positions
    places: int = 0
    decay: float = field(default=0.8, repr=False)

    def predict(self, x: float) -> float | None:
        """Expected processing seconds for size ``x`` (None without data)."""
        if self.sw <= 0:
            return None
        mean_x, mean_y = self.sx / self.sw, self.sy / self.sw
        var = self.sxx / self.sw - mean_x * mean_x
        if var <= 1e-9 * max(1.0, mean_x * mean_x):
            # All jobs the same size so far: scale the mean rate.
            return mean_y * (x / mean_x) if mean_x > 0 else mean_y
        slope = max(0.0, (self.sxy / self.sw - mean_x * mean_y) / var)
        intercept = mean_y - slope * mean_x
        if intercept < 0:  # no negative overhead: refit through the origin
            slope, intercept = (self.sxy / self.sxx if self.sxx > 0 else 0.0), 0.0
        return max(0.0, intercept + slope * x)

    def update(self, x: float, y: float) -> None:
        """Add one observation (size, processing seconds)."""
        predicted = self.predict(x)
        if predicted:
            self.dev = self.decay * self.dev + (1 - self.decay) * abs(y - predicted) / predicted
        elif self.samples == 0:
            self.dev = PRIOR_DEV
        d = self.decay
        self.sw = d * self.sw + 1.0
        self.sx = d * self.sx + x
        self.sy = d * self.sy + y
        self.sxx = d * self.sxx + x * x
        self.sxy = d * self.sxy + x * y
        self.samples += 1

    def place_seconds(self) -> float:
        """Seconds per queue place: learned, else one average job (a provider working one at
        a time)."""
        if self.places:
            return self.place
        return self.sy / self.sw if self.sw > 0 else 0.0

    def learn_place(self, seconds: float) -> None:
        """Add one observation of seconds per queue place."""
        self.place = (
            seconds if not self.places else self.decay * self.place + (1 - self.decay) * seconds
        )
        self.places += 1


# What a saved fit consists of (the storage codec keeps the same fields).
FIT_FIELDS = ("sw", "sx", "sy", "sxx", "sxy", "dev", "samples", "place", "places")
_COUNTS = ("samples", "places")
PRIOR_DEV = 0.25  # relative error assumed before a model has finished a job
POLL_COST = 0.5  # seconds of latency one more request is worth avoiding
QUEUE_LOOKAHEAD = 2  # queue places to let pass before looking again


def _pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def margin(sigma: float, miss_cost: float, poll_cost: float = POLL_COST) -> float:
    """How many standard deviations after the expected finish to poll first.

    Polling at ``mean + k * sigma`` costs the wait after a finish that came earlier,
    ``sigma * (k * Phi(k) + phi(k))``, plus, when the job is not done yet, roughly half the gap
    to the next allowed poll (``miss_cost``) with probability ``1 - Phi(k)``. A provider that
    must not be polled again for 5 s makes a miss expensive, so its first poll goes later.
    """
    best_k, best = 0.0, math.inf
    for step in range(-10, 31):
        k = step / 10
        cost = sigma * (k * _cdf(k) + _pdf(k)) + (1 - _cdf(k)) * (miss_cost / 2 + poll_cost)
        if cost < best:
            best_k, best = k, cost
    return best_k


def interval_mean(mu: float, sigma: float, low: float, high: float) -> float:
    """Mean of a normal(mu, sigma) finish time known to lie in ``(low, high]``."""
    if high <= low:
        return high
    a, b = (low - mu) / sigma, (high - mu) / sigma
    mass = _cdf(b) - _cdf(a)
    if mass < 1e-9:  # far outside the prediction: nothing to weigh with
        return (low + high) / 2
    return min(high, max(low, mu + sigma * (_pdf(a) - _pdf(b)) / mass))


class PredictiveSchedule:
    """Polls when the job should be done, learned per provider/model from finished jobs.

    The first poll goes out a margin after the predicted finish, sized by the learned error and
    by what a miss costs (:func:`margin`); if the job is not done yet, the next polls follow at
    a fraction of the error, growing with how late the job is, capped. Until a model has
    ``min_samples`` finished jobs, the fixed backoff is used. Never faster than the provider's
    minimum interval (counted from the upload, too), never before ``Retry-After``.

    Learning sees censored data: a job done at the first poll only says "finished before now".
    Taking the midpoint there would halve the estimate after every hit; instead the finish is
    the prediction's mean within what the polls bracket (:func:`interval_mean`).
    """

    def __init__(
        self,
        store: SpeedStore,
        clock: Callable[[], float],
        *,
        fallback: PollSchedule | None = None,
        min_samples: int = 2,
        cap: float = 30.0,
        floor: float = 0.5,
        follow: float = 0.2,
        overdue_growth: float = 0.25,
        save_every: float = 2.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._fallback = fallback or BackoffSchedule(cap=cap)
        self._min_samples = min_samples
        self._cap = cap
        self._floor = floor
        self._follow = follow
        self._growth = overdue_growth
        self._save_every = save_every
        self._saved_at: dict[tuple[str, str, str], float] = {}
        self._unsaved: set[tuple[str, str, str]] = set()
        self._fits: dict[tuple[str, str, str], SpeedFit] = {}

    async def load(self) -> None:
        """Read the learned speeds saved by earlier runs."""
        for key, values in (await self._store.load_speed_stats()).items():
            fit = self._fits[key] = SpeedFit()
            for name in FIT_FIELDS:
                if name in values:
                    value = values[name]
                    setattr(fit, name, int(value) if name in _COUNTS else float(value))

    def _fit(self, job: Job) -> SpeedFit | None:
        fit = self._fits.get((job.provider, job.model, job.kind.value))
        return fit if fit is not None and fit.samples >= self._min_samples else None

    def _estimate(self, job: Job) -> tuple[SpeedFit, float, float] | None:
        """The learned fit, the predicted processing seconds and when the provider should be
        done: the processing time after the submission, or, when a queue position was
        reported, after that many places counted from the report."""
        fit, size = self._fit(job), job_size(job)
        if fit is None or size is None:
            return None
        predicted = fit.predict(size)
        if predicted is None:
            return None
        start = job.submitted_at or job.created_at
        if job.queue_position:
            start = max(start, job.updated_at) + job.queue_position * fit.place_seconds()
        return fit, predicted, start + predicted

    def expected_finish(self, job: Job) -> float | None:
        """When the provider should be done (epoch seconds), if there is an estimate."""
        known = self._estimate(job)
        return None if known is None else known[2]

    def eta(self, job: Job) -> float | None:
        return self.expected_finish(job)

    @staticmethod
    def _sigma(fit: SpeedFit, expected: float) -> float:
        # Mean absolute error -> standard deviation (x 1.25 for a normal), never quite zero.
        return max(0.1, 1.25 * max(fit.dev, 0.02) * expected)

    def first_poll(self, job: Job, min_interval: float) -> float:
        known = self._estimate(job)
        if known is None:
            return self._fallback.first_poll(job, min_interval)
        fit, predicted, finish = known
        sigma = self._sigma(fit, predicted)
        miss = max(min_interval, self._floor, self._follow * sigma)
        expected = finish - (job.submitted_at or self._clock())
        return max(min_interval, self._floor, expected + margin(sigma, miss) * sigma)

    def next_poll(self, job: Job, min_interval: float, retry_after: float | None) -> float:
        """``job`` as of the answer just recorded (its queue position, ``updated_at`` = now)."""
        known = self._estimate(job)
        if known is None:
            return self._fallback.next_poll(job, min_interval, retry_after)
        fit, predicted, finish = known
        now = self._clock()
        if job.queue_position and job.queue_position > QUEUE_LOOKAHEAD:
            # Far back in a queue: look again after a few places, to see how fast it moves
            # (which teaches seconds per place) rather than trust a long extrapolation.
            delay = QUEUE_LOOKAHEAD * fit.place_seconds()
        elif finish - now > self._floor:
            delay = finish - now  # e.g. the queue position moved the estimate later
        else:
            # Past the prediction the job is due any moment: ask again soon, backing off as it
            # runs later (a queue or a slow provider), so latency stays low and polls bounded.
            overdue = now - finish
            delay = self._follow * self._sigma(fit, predicted) + self._growth * overdue
        return max(min_interval, retry_after or 0.0, min(self._cap, max(self._floor, delay)))

    def observe_queue(self, job: Job, position: int | None, now: float) -> None:
        """A poll found ``job`` (as of the previous answer) still unfinished at ``position``:
        a drop in position since then says how long a place takes."""
        fit = self._fits.get((job.provider, job.model, job.kind.value))
        before = job.queue_position
        if fit is None or not before or position is None or position >= before:
            return
        fit.learn_place((now - job.updated_at) / (before - position))

    async def observe(self, job: Job, completed_at: float) -> None:
        size = job_size(job)
        if job.submitted_at is None or size is None:
            return
        key = (job.provider, job.model, job.kind.value)
        fit = self._fits.setdefault(key, SpeedFit())
        if job.queue_position:
            # Still queued at the last poll: the time since then covers those places and the
            # processing. Not a processing sample, but a bound on the place time: learned only
            # when it proves the current estimate too slow (the prior errs long).
            processing = fit.predict(size) or 0.0
            bound = (completed_at - job.updated_at - processing) / job.queue_position
            if 0 < bound < fit.place_seconds():
                fit.learn_place(bound)
            return
        # The provider finished after the last poll that said "not yet" (or the upload) and
        # before this one.
        elapsed = completed_at - job.submitted_at
        low = max(job.updated_at, job.submitted_at) - job.submitted_at if job.poll_count else 0.0
        predicted = fit.predict(size) if self._fit(job) else None
        if predicted:
            seconds = interval_mean(predicted, self._sigma(fit, predicted), low, elapsed)
        elif job.poll_count:
            seconds = (low + elapsed) / 2
        else:  # nothing to weigh with: the upper bound errs late, which hits cost little of
            seconds = elapsed
        fit.update(size, max(0.0, seconds))
        # Saved at most every ``save_every`` seconds per model (and by flush() at shutdown): a
        # burst of completions costs one write, a crash loses at most that much learning.
        if completed_at - self._saved_at.get(key, -math.inf) >= self._save_every:
            await self._save(key, completed_at)
        else:
            self._unsaved.add(key)

    async def flush(self) -> None:
        """Save every fit learned since its last save (called at shutdown)."""
        for key in list(self._unsaved):
            await self._save(key, self._clock())

    async def _save(self, key: tuple[str, str, str], now: float) -> None:
        fit = self._fits[key]
        values = {k: float(getattr(fit, k)) for k in FIT_FIELDS}
        self._saved_at[key] = now
        self._unsaved.discard(key)
        try:
            await self._store.save_speed_stats(key, values, now)
        except Exception as exc:  # learning is an optimisation: never fail a job over it
            _LOGGER.warning("could not save speed statistics: %s", exc)
