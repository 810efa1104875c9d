"""``voicebot run``: the bot on every configured platform until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading

from adapters import configured_adapters, enabled, platforms
from adapters.cli.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from adapters.cli.models import startup_notes
from bot.app.core import run_bot
from bot.config.load import Config

_LOGGER = logging.getLogger(__name__)


def run(config: Config) -> int:
    """Run the bot; the exit code says how it stopped (0 SIGTERM, 130 Ctrl-C, 2 no platform)."""
    if not enabled(config):
        known = platforms()
        print(
            "voicebot: no chat platform configured: set "
            + " and/or ".join(p.token_env for p in known)
            + " ("
            + " / ".join(f"{p.name}.token" for p in known)
            + " in the config)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    received: list[signal.Signals] = []
    # The drain takes up to shutdown.grace_seconds, its other steps ~9 s; a second signal
    # leaves 2 s to release the leases of the steps it cuts short.
    grace = config.shutdown.grace_seconds

    def on_signal(sig: signal.Signals) -> None:
        if not received:
            received.append(sig)
            _arm_exit_watchdog(grace + 9.5)

    for note in startup_notes(config):  # said now, not by the first voice note that fails
        _LOGGER.warning("%s", note)
    asyncio.run(
        run_bot(
            config,
            configured_adapters,
            on_signal=on_signal,
            on_second_signal=lambda: _arm_exit_watchdog(2.0),
        )
    )
    # SIGTERM is the service manager's ordinary stop (0); Ctrl-C is the shell's 130.
    return EXIT_INTERRUPTED if received and received[0] == signal.SIGINT else EXIT_OK


def _arm_exit_watchdog(after: float = 9.5) -> None:
    """A signal always ends the process in time: run_bot's shutdown is bounded step by step,
    and should anything still hold the event loop, this thread ends the process regardless."""

    def hard_exit() -> None:
        print("voicebot: shutdown took too long; exiting", file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    timer = threading.Timer(after, hard_exit)
    timer.daemon = True
    timer.start()
