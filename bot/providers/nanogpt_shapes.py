"""NanoGPT's answer shapes: transcripts and words parsed, tickets to poll with, failed runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.model.errors import ContentPolicyViolation, ProviderJobFailed
from bot.model.speech import AudioInput, Segment, SttOptions, Transcript, TtsOptions, Word
from bot.providers.base import PollResult, PollStatus, Ticket
from bot.providers.http import HttpAnswer, malformed
from bot.providers.values import float_or_none, int_or_none, segments_or_empty, str_or_none

_LOGGER = logging.getLogger(__name__)

_CONTENT_POLICY = "CONTENT_POLICY_VIOLATION"


def minutes(seconds: float) -> str:
    """Format a duration as the minutes string NanoGPT's ``actualDuration`` field expects."""
    text = f"{max(seconds, 0.0) / 60:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def tts_failure(data: Mapping[str, Any], body: Mapping[str, Any]) -> PollResult:
    """A failed speech run: a content-policy refusal said as such, anything else as failed."""
    code = str_or_none(body.get("code"))
    _LOGGER.warning(
        "nanogpt tts run %s failed (%s): %s", data.get("runId"), code, body.get("error")
    )
    if code == _CONTENT_POLICY:
        return PollResult(
            PollStatus.FAILED,
            error=ContentPolicyViolation.default_message.id,
            error_code=_CONTENT_POLICY,
        )
    return PollResult(
        PollStatus.FAILED, error=ProviderJobFailed.default_message.id, error_code=code or "failed"
    )


def download_ticket(
    name: str,
    url: str,
    content_type: str | None,
    body: Mapping[str, Any],
    options: TtsOptions,
) -> Ticket:
    """A synchronous answer whose audio is not fetched yet: polling it retries the download."""
    data = {
        "kind": "tts",
        "download": True,
        "audioUrl": url,
        "contentType": content_type,
        "model": body.get("model", options.model),
        "cost": body.get("cost"),
    }
    return Ticket(provider=name, data=data, cost=float_or_none(body.get("cost")))


def stt_ticket(
    name: str, body: Mapping[str, Any], audio: AudioInput, options: SttOptions
) -> Ticket:
    """Keep every field the status call echoes; fall back to what we sent when the 202 omits one."""
    cost = float_or_none(body.get("cost"))
    data = {
        **_run_fields("stt", body, options.model),
        "fileName": body.get("fileName", audio.filename),
        "fileSize": body.get("fileSize", len(audio.data)),
        "chargedDuration": body.get("chargedDuration", float(minutes(audio.duration))),
        "diarize": bool(body.get("diarize", options.diarize)),
    }
    return Ticket(provider=name, data=data, cost=cost)


def tts_ticket(name: str, body: Mapping[str, Any], options: TtsOptions) -> Ticket:
    """An asynchronous speech run (202): the fields ``/tts/status`` takes back."""
    return Ticket(
        provider=name,
        data=_run_fields("tts", body, options.model),
        cost=float_or_none(body.get("cost")),
        queue_position=int_or_none(body.get("queuePosition")),
    )


def tts_status_params(data: Mapping[str, Any]) -> dict[str, str]:
    """The query ``/tts/status`` takes: the run's echoed fields that are set."""
    params = {
        key: str(data[key])
        for key in ("runId", "model", "cost", "paymentSource")
        if data.get(key) is not None
    }
    params["isApiRequest"] = "true"
    return params


def _run_fields(kind: str, body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """What both status routes echo of a run (the model we asked for when the 202 omits it)."""
    return {
        "kind": kind,
        "runId": str(body["runId"]),
        "model": body.get("model", model),
        "cost": body.get("cost"),
        "paymentSource": body.get("paymentSource"),
    }


def parse_transcript(answer: HttpAnswer, body: Mapping[str, Any]) -> Transcript:
    """The transcript of a 200 answer or a completed run (``metadata`` durations in minutes)."""
    text = body.get("transcription")
    if not isinstance(text, str):
        raise malformed(answer, "no transcription text")
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    words = _parse_words(body.get("words"))
    segments = _diarization_segments(body.get("diarization")) or _segments_from_words(words)
    minutes = float_or_none(meta.get("actualDuration"))
    return Transcript(
        text=text.strip(),
        segments=segments,
        words=words,
        language=str_or_none(meta.get("language")),
        # metadata.actualDuration is in minutes, like the form field we send; Transcript wants s.
        duration=minutes * 60 if minutes is not None else None,
        cost=float_or_none(meta.get("cost")),
        currency=str_or_none(meta.get("currency")),
        diarized=any(s.speaker for s in segments) or any(w.speaker for w in words),
    )


def _parse_words(raw: Any) -> tuple[Word, ...]:
    """Words and audio events from Elevenlabs' ``words``; ``spacing`` tokens carry nothing."""
    if not isinstance(raw, list):
        return ()
    words = []
    for item in raw:
        if not isinstance(item, Mapping) or item.get("type") == "spacing":
            continue
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        words.append(
            Word(
                text=text,
                start=float_or_none(item.get("start")),
                end=float_or_none(item.get("end")),
                speaker=str_or_none(item.get("speaker_id")),
                type=str_or_none(item.get("type")) or "word",
            )
        )
    return tuple(words)


def _diarization_segments(raw: Any) -> tuple[Segment, ...]:
    """The ``segments`` of NanoGPT's ``diarization`` block (OpenAI's segment shape)."""
    return segments_or_empty(raw.get("segments") if isinstance(raw, Mapping) else None)


def _segments_from_words(words: tuple[Word, ...]) -> tuple[Segment, ...]:
    """Group consecutive words by speaker when the answer has words but no diarization block."""
    groups: list[list[Word]] = []
    for word in words:
        if word.speaker is None:
            continue
        if groups and groups[-1][0].speaker == word.speaker:
            groups[-1].append(word)
        else:
            groups.append([word])
    return tuple(
        Segment(" ".join(w.text for w in g), g[0].start, g[-1].end, g[0].speaker) for g in groups
    )
