"""``transcribe`` and ``speak`` refused before anything is sent: the chat sentence, exit 2."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.model.errors import AudioTooLong, InputError
from bot.service.checks import NoTimings, Unsupported
from bot.service.limits import LimitExceeded

_LOGGER = logging.getLogger(__name__)

EXIT_REFUSED = 2
"""As an invalid command line: nothing was stored or sent, the command can be fixed and re-run."""

REFUSALS = (Unsupported, LimitExceeded, AudioTooLong)
"""What the service refuses before a job exists: the model cannot do what the command line asks
(timings, speakers, a language, a voice, that much text), or a limit forbids the whole recording
or text."""


def refused(args: argparse.Namespace, exc: InputError) -> int:
    """Print a refusal (the same sentence a chat user gets) and what to change; return 2."""
    print(f"voicebot: {args.command}: {exc.user_message}", file=sys.stderr)
    if isinstance(exc, NoTimings):
        print("voicebot: use --format text or json, or a model that gives timings", file=sys.stderr)
    _LOGGER.debug("refused before sending: %s", exc)
    return EXIT_REFUSED
