"""What a provider call's outcome means for a job: when a submit may be sent again, the notes and
sentences a user is shown, and multi-part TTS tickets (some parts' audio kept, the rest polled)."""

from __future__ import annotations

import base64
import logging

from bot.chat import replies
from bot.model.errors import ProviderError, ProviderUnavailable, ProviderUnreachable, RateLimited
from bot.model.job import Job
from bot.model.speech import SpeechAudio
from bot.providers.base import PollResult, PollStatus, SpeechToText, TextToSpeech, Ticket
from bot.text import encode

_LOGGER = logging.getLogger(__name__)


def retry_submit(exc: ProviderError) -> bool:
    """A submit may be repeated only when the provider provably did not take (or charge) it."""
    if isinstance(exc, RateLimited):
        return True
    return isinstance(exc, ProviderUnavailable) and (exc.status == 503 or not exc.request_sent)


def progress_step(job: Job, result: PollResult) -> bool:
    """Whether the progress crossed a 10 % step: the placeholder is edited that often, no more
    (each edit is a chat API call)."""
    if result.progress is None:
        return False
    before = -1 if job.progress is None else int(job.progress * 10)
    return int(result.progress * 10) != before


def part_entry(answer: SpeechAudio | Ticket) -> dict[str, object]:
    """One part of a multi-part TTS ticket: fetched audio (base64) or the part's own ticket."""
    if isinstance(answer, SpeechAudio):
        return {"audio": base64.b64encode(answer.data).decode(), "contentType": answer.content_type}
    return {"ticket": dict(answer.data)}


async def poll_parts(provider: SpeechToText | TextToSpeech, ticket: Ticket) -> PollResult:
    """Poll each unfinished part of a multi-part TTS ticket; COMPLETED once all have audio."""
    audios: list[SpeechAudio] = []
    for entry in ticket.data["parts"]:
        if "audio" in entry:
            audios.append(SpeechAudio(base64.b64decode(entry["audio"]), entry["contentType"]))
            continue
        result = await provider.poll(Ticket(provider=ticket.provider, data=entry["ticket"]))
        if result.status is not PollStatus.COMPLETED or result.audio is None:
            return result
        audios.append(result.audio)
    return PollResult(PollStatus.COMPLETED, audio_parts=tuple(audios))


def deadline_message(job: Job) -> str:
    return replies.deadline_text(job.deadline_at - job.created_at)


def stuck_message(job: Job) -> str:
    return encode(replies.STUCK)


def retry_note(exc: ProviderError, attempt: int, delay: float, *, sent: bool) -> dict[str, object]:
    """What a deliverer is told when a provider call will be retried (see ``_notify``)."""
    short = (
        f"{exc.provider}: {exc.host}: {exc.reason}"
        if isinstance(exc, ProviderUnreachable)
        else str(exc)
    )
    return {
        "attempt": attempt,
        "retry_in": delay,
        "detail": str(exc),
        "short": short,
        "user_message": encode(exc.text),
        "sent": sent,
    }


def log_provider_failure(job: Job, exc: ProviderError) -> None:
    # One operator line per job, never a retry storm: auth and balance problems need a human.
    _LOGGER.error(
        "job %s: %s provider refused (%s, status %s): %s",
        job.id,
        job.provider,
        type(exc).__name__,
        exc.status,
        exc,
    )
