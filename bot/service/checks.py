"""What a request asks of a model, checked against what the model declares before anything is
stored, split or paid: subtitles need timings, a language the model knows, speakers a model
that tells them apart (Home Assistant's ``check_metadata`` idea)."""

from __future__ import annotations

import logging

from bot.chat.settings import parse_language
from bot.model.errors import InputError
from bot.providers.base import SttCapabilities
from bot.text import Language, Msg, msg

_LOGGER = logging.getLogger(__name__)


class Unsupported(InputError):
    """The request asks a model for something it declares it cannot do; nothing was stored or
    sent (the CLI exits 2, a chat user gets the sentence instead of a job)."""


class NoTimings(Unsupported):
    """Subtitles asked of a model that gives no timings."""


def no_timings(model: str) -> Msg:
    """The refusal of subtitles from a model that gives no timings."""
    return msg(
        "The transcription model {model} gives no timings, so it cannot make subtitles "
        "(SRT or VTT).",
        model=model,
    )


def no_diarization(model: str) -> Msg:
    """The refusal of speaker labels from a model that cannot tell speakers apart."""
    return msg("The transcription model {model} cannot tell speakers apart.", model=model)


def chosen_language(value: str, caps: SttCapabilities) -> str:
    """The language code a caller asked for (a code or a name, as ``/settings`` takes it),
    checked against the model's languages with a "did you mean".

    Raises:
        Unsupported: not a language, or one the model does not declare.
    """
    try:
        return parse_language(value, caps.languages)
    except InputError as exc:
        raise Unsupported(exc.text) from exc


def known_language(code: str, caps: SttCapabilities) -> None:
    """Check a language taken from settings or the config (already a code) against the model.

    Raises:
        Unsupported: the model declares its languages and ``code`` is not among them.
    """
    if code == "auto" or not caps.languages:
        return
    if code in caps.languages or code.split("-")[0] in caps.languages:
        return
    raise Unsupported(
        msg(
            "The transcription model does not know {language} ({code}).",
            language=Language(code),
            code=code,
        )
    )


def check_stt(model: str, caps: SttCapabilities, *, diarize: bool | None, timings: bool) -> None:
    """Refuse what ``model`` declares it cannot do: asked-for speakers or timings.

    Args:
        model: the model's name, for the sentence.
        caps: what it declares.
        diarize: True when the caller asked for speaker labels itself (a chat's standing
            setting is not a request: it applies where the model can).
        timings: the caller needs timings (subtitles).

    Raises:
        Unsupported: the sentence says which and why.
    """
    if diarize and not caps.diarization:
        raise Unsupported(no_diarization(model))
    if timings and not caps.timestamps:
        raise NoTimings(no_timings(model))
