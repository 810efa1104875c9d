"""What a link fetch hands back and how it fails: plain data, one sentence per refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass

from bot.model.errors import InputError
from bot.text import Msg, Size, msg

ProgressFn = Callable[[int, int | None], Awaitable[bool]]
"""(bytes so far, total or None) -> False to stop the download."""


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What is known before a byte of media is fetched; JSON-able via as_dict/from_dict."""

    url: str
    """The link as the user gave it (normalised)."""
    kind: str
    """"direct" (a plain HTTP media file) or "ytdl" (a yt-dlp extractor: sites, pages, HLS)."""
    title: str | None
    duration: float | None
    """Seconds, when known before downloading (yt-dlp metadata); None for most direct files."""
    size: int | None
    """Bytes, when known (Content-Length, yt-dlp filesize/filesize_approx)."""
    extractor: str | None = None

    def as_dict(self) -> dict[str, object]:
        """A JSON-able mapping (stored in a job's options)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LinkInfo:
        """The inverse of :meth:`as_dict`; unknown keys (e.g. ``downloaded``) are ignored."""
        duration, size = data.get("duration"), data.get("size")
        return cls(
            url=str(data["url"]),
            kind=str(data["kind"]),
            title=None if data.get("title") is None else str(data["title"]),
            duration=float(duration) if isinstance(duration, (int, float)) else None,
            size=int(size) if isinstance(size, (int, float)) else None,
            extractor=None if data.get("extractor") is None else str(data["extractor"]),
        )


@dataclass(frozen=True, slots=True)
class Downloaded:
    """The fetched audio, ready for the probe."""

    data: bytes
    filename: str
    """A safe file name with an extension PyAV can probe, e.g. ``Lecture 3.m4a``."""
    content_type: str | None


class LinkRefused(InputError):
    """A link that will not be fetched: bad scheme, disabled, domain not allowed, a private or
    loopback address (first request, any redirect, any segment), not media, too large, an
    unsupported site, a playlist. ``reason`` is a short key for logs and tests."""

    def __init__(self, reason: str, detail: str = "", *, text: Msg | None = None) -> None:
        shown = text or SENTENCES.get(reason) or SENTENCES["failed"]
        super().__init__(
            f"link refused ({reason}): {detail}" if detail else reason, user_message=shown
        )
        self.reason = reason


class DownloadCancelled(Exception):
    """The progress callback asked the download to stop."""


def too_large(size: int, limit: int) -> LinkRefused:
    """The refusal of a recording larger than ``links.max_bytes``."""
    text = msg(
        "That recording is too large to fetch: {size}; the limit is {limit}.",
        size=Size(size),
        limit=Size(limit),
    )
    return LinkRefused("too_large", f"{size} bytes > {limit}", text=text)


def http_error(status: int) -> LinkRefused:
    """The refusal of a link whose site answered with an HTTP error."""
    text = msg("The site answered that link with an error (HTTP {status}).", status=status)
    return LinkRefused("http_error", f"HTTP {status}", text=text)


SENTENCES: dict[str, Msg] = {
    "disabled": msg("Links are turned off on this bot."),
    "invalid": msg("That does not look like a web link."),
    "scheme": msg("Only http:// and https:// links can be transcribed."),
    "credentials": msg("Links that carry a user name or password are not fetched."),
    "domain": msg("Links to that site are not allowed on this bot."),
    "private": msg(
        "That link points to a private or local network address, which this bot does not fetch."
    ),
    "unknown_host": msg("The site in that link could not be found."),
    "unreachable": msg("The site in that link could not be reached; try again later."),
    "redirects": msg("That link redirects too many times."),
    "not_media": msg("No audio or video was found at that link."),
    "playlist": msg("Playlists are not supported; send the link of one item."),
    "timeout": msg("The site took too long to answer; try again later."),
    "cut_short": msg("The download was cut short; try again later."),
    "failed": msg("The recording could not be downloaded from that link."),
}
