"""The CLI's exit codes: what ``--help`` documents, which failure maps to which code, and an
interrupted command ending at once."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Awaitable
from typing import TypeVar

from bot.model.errors import AudioError, BotError, InputError
from bot.service.checks import NoTimings

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell shows for Ctrl-C

EXIT_CODES = """exit codes:
  0    success (run: stopped by SIGTERM)
  1    the job failed, or a file or the database could not be read or written
  2    invalid command line or configuration, or a request refused before anything was sent
  130  interrupted by Ctrl-C (SIGINT), or transcribe/speak by SIGTERM: its job was cancelled"""


class UsageError(BotError):
    """The command line asks for something that cannot be done; nothing was sent (exit 2)."""


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts: a whole number of at least 1 (else a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


async def refused_as_usage(creating: Awaitable[T]) -> T:
    """Await a job's creation; a refusal there means nothing was sent, so it is a usage error.

    The service checks everything knowable (provider, key, model, voice, options, limits)
    before it stores a job; only a file that is not audio stays a file error (exit 1).
    """
    try:
        return await creating
    except AudioError:
        raise
    except NoTimings as exc:
        hint = "voicebot: use --format text or json, or a model that gives timings"
        raise UsageError(f"{exc.user_message}\n{hint}") from exc
    except InputError as exc:
        # The same sentence a chat user gets (the operator detail is in str(exc)).
        raise UsageError(exc.user_message) from exc
    except UsageError:
        raise
    except BotError as exc:
        # A provider that cannot run (unknown, no key): the operator's detail is the useful part.
        raise UsageError(str(exc)) from exc


def exit_now_if_engines_linger(code: int) -> None:
    """End an interrupted command now, not when a local engine's worker thread lets go.

    The job is cancelled and the database closed; what still runs is a faster-whisper or Piper
    thread finishing its segment or loading its model, which the interpreter would join at exit
    (seconds, on a CPU). Nothing it produces is wanted any more.
    """
    current = threading.current_thread()
    if any(t is not current and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
