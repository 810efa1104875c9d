"""JobDesk: what both job-creating paths (intake, text jobs) work with, built once by the façade."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.chat.preferences import Preferences
from bot.service.limits import Guard
from bot.service.records import JobRecords, Recordings
from bot.service.routes import ProviderRoutes

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobDesk:
    """The job records and kept recordings, the access and limit checks, a person's and a
    chat's preferences, the provider routes, the clock, and the poller's wake-up call (after
    a job is stored, so it is picked up at once rather than at the next tick)."""

    store: JobRecords
    recordings: Recordings
    guard: Guard
    preferences: Preferences
    routes: ProviderRoutes
    clock: Callable[[], float]
    wake: Callable[[], None]
