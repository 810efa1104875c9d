"""cantonese.ai speech-to-text: asynchronous upload to /api/stt, then poll get-result by id."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.model.errors import ProviderBadRequest, ProviderJobFailed, UnknownJob
from bot.model.speech import AudioInput, Segment, SttOptions, Transcript
from bot.providers.base import (
    PollResult,
    PollStatus,
    SttCapabilities,
    Ticket,
    in_progress,
    refuse_oversize,
)
from bot.providers.http import HttpAnswer, HttpEndpoint, HttpTransport, malformed, vendor_text

if TYPE_CHECKING:
    from bot.providers.registry import BuildContext, Built, ProviderConfig

_LOGGER = logging.getLogger(__name__)

NAME = "cantonese"
MAX_UPLOAD = 50_000_000
"""Assumption: cantonese.ai documents no upload limit we could find; 50 MB is a conservative cap."""

_CAPABILITIES = SttCapabilities(
    asynchronous=True,
    diarization=True,
    timestamps=True,
    formats=frozenset({"ogg", "oga", "opus", "mp3", "wav", "m4a", "mp4", "webm", "flac", "aac"}),
    max_upload_bytes=MAX_UPLOAD,
    # The docs ask clients to poll no faster than every 5 s; a job over 30 min is stuck.
    min_poll_interval=5.0,
    max_processing_seconds=1800.0,
)
_SPEAKER_LINE = re.compile(r"^\s*(SPEAKER_\d+)\s*[:：]\s*(.*)$")


def build(config: ProviderConfig, context: BuildContext) -> Built:
    """Registry factory: speech-to-text only."""
    from bot.providers.registry import Built

    key = config.api_key or ""
    return Built(
        stt=CantoneseSpeechToText(
            endpoint(context.http, config.name, config.base_url or "", config.timeout, key), key
        )
    )


def endpoint(
    http: HttpTransport, name: str, base_url: str, timeout: float, api_key: str
) -> HttpEndpoint:
    """The instance's view of the transport, the key scrubbed from messages but not sent by
    default: uploads authenticate with a form field, polls with a header."""
    return HttpEndpoint(http, name, base_url.rstrip("/"), timeout, secrets=(api_key,))


class CantoneseSpeechToText:
    """cantonese.ai ``/api/stt``; every job is asynchronous and failures are never retried."""

    def __init__(self, http: HttpEndpoint, api_key: str) -> None:
        self.name = http.provider
        self._api_key = api_key
        self._http = http

    def capabilities(self, model: str) -> SttCapabilities:
        """Return the capabilities; cantonese.ai has a single STT model, so ``model`` is ignored."""
        return _CAPABILITIES

    async def submit(self, audio: AudioInput, options: SttOptions) -> Ticket:
        """Upload ``audio`` without waiting for completion.

        Returns:
            A ticket holding the request id.

        Raises:
            PayloadTooLarge: the audio exceeds ``MAX_UPLOAD`` (nothing was sent).
            ProviderBadRequest: the API answered ``success: false``.
            ProviderError: any HTTP failure, typed by status.
        """
        refuse_oversize(self.name, audio, MAX_UPLOAD)
        form = aiohttp.FormData()
        # cantonese.ai authenticates uploads with a form field, not a header.
        form.add_field("api_key", self._api_key)
        form.add_field("data", audio.data, filename=audio.filename, content_type=audio.content_type)
        form.add_field("with_timestamp", _flag(options.timestamps))
        form.add_field("with_diarization", _flag(options.diarize))
        form.add_field("wait_for_completion", "false")
        if options.context:
            form.add_field("context", options.context)
        answer = await self._call("POST", "api/stt", data=form)
        body = answer.json_object()
        if body.get("success") is not True:
            raise ProviderBadRequest(
                f"{self.name}: upload refused: {vendor_text(answer.body)}",
                provider=self.name,
                status=200,
            )
        data = body.get("data")
        request_id = data.get("request_id") if isinstance(data, Mapping) else None
        if not isinstance(request_id, str | int) or request_id == "":
            raise malformed(answer, "no data.request_id")
        return Ticket(provider=self.name, data={"request_id": str(request_id)})

    async def poll(self, ticket: Ticket) -> PollResult:
        """Ask get-result where the job is.

        Raises:
            UnknownJob: the API answered ``success: false`` (it does not know the id).
            ProviderError: any HTTP failure, typed by status.
        """
        request_id = str(ticket.data["request_id"])
        answer = await self._call(
            "GET",
            "api/speech-to-text/get-result",
            params={"id": request_id},
            headers={"x-api-key": self._api_key},
        )
        body = answer.json_object()
        if body.get("success") is not True:
            raise UnknownJob(
                f"{self.name}: get-result does not know {request_id}: {vendor_text(answer.body)}",
                provider=self.name,
                status=answer.status,
            )
        result = body.get("transcription")
        if not isinstance(result, Mapping):
            raise malformed(answer, "no transcription object")
        status = result.get("status")
        running = in_progress(status)
        if running is not None:
            return running
        if status == "completed":
            return PollResult(PollStatus.COMPLETED, transcript=_parse_transcript(answer, result))
        if status == "failed":
            _LOGGER.warning("cantonese job %s failed: %s", request_id, result.get("error"))
            return PollResult(
                PollStatus.FAILED, error=ProviderJobFailed.default_message.id, error_code="failed"
            )
        raise malformed(answer, f"unknown status {status!r}")

    async def _call(self, method: str, path: str, **kwargs: Any) -> HttpAnswer:
        return await self._http.call(method, path, **kwargs)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _parse_transcript(answer: HttpAnswer, result: Mapping[str, Any]) -> Transcript:
    """Prefer ``fused_transcription`` (the API's best text), fall back to ``transcription``."""
    text = result.get("fused_transcription") or result.get("transcription")
    if not isinstance(text, str):
        raise malformed(answer, "completed without transcription text")
    segments = _parse_diarization(result.get("diarization"))
    duration = result.get("duration_s")
    return Transcript(
        text=text.strip(),
        segments=segments,
        duration=float(duration) if isinstance(duration, int | float) else None,
        diarized=any(s.speaker for s in segments),
    )


def _parse_diarization(raw: Any) -> tuple[Segment, ...]:
    """Turn ``SPEAKER_00: text`` lines into segments; unlabelled lines continue the last speaker."""
    if not isinstance(raw, str):
        return ()
    segments: list[Segment] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        match = _SPEAKER_LINE.match(line)
        if match:
            segments.append(Segment(text=match.group(2).strip(), speaker=match.group(1)))
        elif segments:
            last = segments[-1]
            segments[-1] = Segment(f"{last.text} {line.strip()}".strip(), speaker=last.speaker)
        else:
            segments.append(Segment(text=line.strip()))
    return tuple(segments)
