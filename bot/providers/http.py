"""The one HTTP transport of every HTTP provider (speech, chat): bytes in, bytes or typed error."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.model.errors import (
    AudioExpired,
    EndpointNotFound,
    InsufficientBalance,
    MalformedAnswer,
    PayloadTooLarge,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    UnknownJob,
    UnknownModel,
)
from bot.providers import waits

_LOGGER = logging.getLogger(__name__)

_MAX_VENDOR_TEXT = 200
"""Characters of the vendor's error text kept in an operator message (bodies can be HTML pages)."""

_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    400: ProviderBadRequest,
    401: ProviderAuthError,
    402: InsufficientBalance,
    403: ProviderAuthError,
    404: UnknownJob,
    413: PayloadTooLarge,
    429: RateLimited,
}


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A successful (2xx) answer: status, bare content type (no parameters) and body bytes."""

    status: int
    content_type: str
    body: bytes
    provider: str
    what: str
    """``METHOD /path`` of the request, for error messages (never the query or the key)."""

    def json(self) -> Any:
        """Decode the body as JSON.

        Raises:
            ProviderUnavailable: the body is not JSON (a proxy page, a truncated answer...).
        """
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedAnswer(
                f"{self.provider}: {self.what} answered {self.status} with malformed JSON: "
                f"{_snippet(self.body)!r}",
                provider=self.provider,
                status=self.status,
            ) from exc

    def json_object(self) -> dict[str, Any]:
        """Decode the body as a JSON object (dict); anything else is a malformed answer."""
        data = self.json()
        if not isinstance(data, dict):
            raise MalformedAnswer(
                f"{self.provider}: {self.what} answered {self.status} with JSON that is not an "
                f"object: {_snippet(self.body)!r}",
                provider=self.provider,
                status=self.status,
            )
        return data


def malformed(answer: HttpAnswer, detail: str) -> MalformedAnswer:
    """Build the error for a 2xx answer whose JSON does not have the documented shape."""
    return MalformedAnswer(
        f"{answer.provider}: {answer.what} answered {answer.status} with an unexpected shape "
        f"({detail}): {_snippet(answer.body)!r}",
        provider=answer.provider,
        status=answer.status,
    )


class HttpTransport:
    """The one HTTP transport every HTTP provider shares: one ``aiohttp.ClientSession`` (owned by
    the composition root), and the one place where an HTTP status becomes a typed error."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(
        self,
        method: str,
        url: str,
        *,
        provider: str,
        timeout: float,
        secrets: Iterable[str] = (),
        statuses: Mapping[int, type[ProviderError]] | None = None,
        api: bool = True,
        **kwargs: Any,
    ) -> HttpAnswer:
        """Send one request and return its 2xx answer, or raise the typed error for anything else.

        Redirects are not followed unless the caller passes ``allow_redirects=True``: requests
        that carry an API key must not be replayed to whatever host a redirect names.

        Args:
            method: HTTP method.
            url: full URL.
            provider: provider instance name stored on errors and logged.
            timeout: total seconds for connect, send and reading the whole body.
            secrets: strings (API keys) scrubbed from any message, in case a vendor echoes them.
            statuses: per-vendor overrides of the status → error table (e.g. 404 means "unknown
                model" on OpenAI-compatible APIs but "unknown run" on NanoGPT's status routes).
            api: False for plain file downloads; True means an HTML/empty 404 says that no API
                lives at the URL (``EndpointNotFound``: a wrong ``base_url``).
            **kwargs: passed to ``session.request`` (``json``, ``data``, ``headers``...).

        Returns:
            The answer; its body has been read completely.

        Raises:
            ProviderError: a subclass chosen by status (see ``_STATUS_ERRORS``; 5xx and transport
                failures are ``ProviderUnavailable``, with ``request_sent=False`` only when the
                connection was never established).
        """
        what = f"{method} {urlsplit(url).path}"
        kwargs.setdefault("allow_redirects", False)
        answer, retry_after = await self._exchange(
            method, url, what, provider=provider, timeout=timeout, secrets=secrets, **kwargs
        )
        if 200 <= answer.status < 300:
            _LOGGER.debug("%s %s -> %s (%d bytes)", provider, what, answer.status, len(answer.body))
            return answer
        raise _status_error(_error_table(statuses, api, answer), answer, retry_after, secrets)

    async def _exchange(
        self,
        method: str,
        url: str,
        what: str,
        *,
        provider: str,
        timeout: float,
        secrets: Iterable[str],
        **kwargs: Any,
    ) -> tuple[HttpAnswer, float | None]:
        """The answer whatever its status, and the wait it asks for; transport failures raised."""
        try:
            async with self.session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
            ) as response:
                body = await response.read()
                answer = HttpAnswer(response.status, response.content_type, body, provider, what)
                return answer, waits.retry_after(response.headers)
        except aiohttp.ClientConnectorError as exc:
            # Refused / DNS / TLS handshake: nothing reached the provider, so resubmitting is free.
            raise unreachable(provider, what, exc) from exc
        except TimeoutError as exc:  # asyncio.TimeoutError is this alias on 3.11
            raise ProviderTimeout(
                f"{provider}: {what}: no complete answer within {timeout:g} s",
                provider=provider,
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailable(
                _scrub(f"{provider}: {what}: {type(exc).__name__}: {exc}", secrets)[:300],
                provider=provider,
            ) from exc


@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    """One provider instance's view of the transport: base URL, auth headers, secrets, timeout.

    Vendor modules hold one of these and only build requests and parse answers.
    """

    transport: HttpTransport
    provider: str
    """The instance name (``groq``, ``nanogpt``...): stored on errors and named in the log."""
    base_url: str
    timeout: float = 120.0
    headers: Mapping[str, str] = field(default_factory=dict)
    """Sent with every call to ``base_url`` (authentication); never to another origin."""
    secrets: tuple[str, ...] = ()
    statuses: Mapping[int, type[ProviderError]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """``base_url`` joined with a relative ``path``."""
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    async def call(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> HttpAnswer:
        """Send ``method`` to ``base_url/path`` with the instance's headers (see ``send``)."""
        return await self.transport.send(
            method,
            self.url(path),
            provider=self.provider,
            timeout=self.timeout,
            secrets=self.secrets,
            statuses=self.statuses,
            headers={**self.headers, **(headers or {})},
            **kwargs,
        )

    async def download(self, url: str) -> HttpAnswer:
        """GET generated audio; the auth headers only go along when the URL is on the API's origin.

        Raises:
            ProviderError: as ``send``; an empty body is a malformed answer.
        """
        url = urljoin(self.base_url.rstrip("/") + "/", url)
        own = same_origin(url, self.base_url)
        answer = await self.transport.send(
            "GET",
            url,
            provider=self.provider,
            timeout=self.timeout,
            secrets=self.secrets,
            headers=dict(self.headers) if own else {},
            statuses={404: AudioExpired, 410: AudioExpired},
            api=False,
            # Audio usually lives on a CDN that may redirect; without the key that is harmless.
            allow_redirects=not own,
        )
        if not answer.body:
            raise malformed(answer, "empty audio download")
        return answer


def unreachable(provider: str, what: str, exc: aiohttp.ClientConnectorError) -> ProviderUnreachable:
    """Name the host, the reason and what to check for a connection that never came up."""
    host = f"{exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason, check = "DNS lookup failed", "the host name and this machine's DNS"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason, check = "TLS certificate not trusted", "the URL and the system CA certificates"
    elif isinstance(exc, aiohttp.ClientConnectorSSLError):
        reason, check = "TLS handshake failed", "that the URL should be https and the port"
    elif isinstance(exc.os_error, ConnectionRefusedError):
        reason, check = "connection refused", "that the service runs and the port is right"
    else:
        reason = (exc.os_error.strerror or type(exc.os_error).__name__).lower()
        check = "the network and any firewall"
    return ProviderUnreachable(
        f"{provider}: cannot connect to {host} ({reason}) for {what}; check "
        f"providers.{provider}.base_url and {check}",
        provider=provider,
        host=host,
        reason=reason,
    )


def same_origin(url: str, base_url: str) -> bool:
    """Return whether ``url`` has the scheme, host and port of ``base_url`` (where keys may go)."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, _port(a.scheme, a.port)) == (
        b.scheme,
        b.hostname,
        _port(b.scheme, b.port),
    )


def _port(scheme: str, port: int | None) -> int | None:
    if port is not None:
        return port
    return {"http": 80, "https": 443}.get(scheme)


def _error_table(
    statuses: Mapping[int, type[ProviderError]] | None, api: bool, answer: HttpAnswer
) -> dict[int, type[ProviderError]]:
    """The status → error table for one answer: the common one with the vendor's overrides."""
    table = {**_STATUS_ERRORS, **(statuses or {})}
    if api and answer.status == 404 and not _is_json(answer.body):
        # APIs answer 404 with a JSON error; an HTML or empty 404 means nothing is there.
        table[404] = EndpointNotFound
    elif (
        api
        and answer.status == 404
        and table[404] is EndpointNotFound
        and "model" in vendor_text(answer.body).lower()
    ):
        # A client that reads a JSON 404 as "no such route" still hears an unknown model when
        # the error text is about one (servers without OpenAI's code model_not_found).
        table[404] = UnknownModel
    return table


def _status_error(
    table: Mapping[int, type[ProviderError]],
    answer: HttpAnswer,
    retry_after: float | None,
    secrets: Iterable[str],
) -> ProviderError:
    """The typed error for a non-2xx answer: by ``table``, else 5xx unavailable, else 4xx."""
    provider, what, status, body = answer.provider, answer.what, answer.status, answer.body
    code = _vendor_code(body)
    if status == 429 and code == "insufficient_quota":
        # OpenAI's "You exceeded your current quota": out of credit, waiting will not help.
        cls: type[ProviderError] = InsufficientBalance
    elif code == "model_not_found":
        cls = UnknownModel
    elif status in table:
        cls = table[status]
    elif status >= 500:
        cls = ProviderUnavailable
    else:
        # Other 4xx, and 3xx we refused to follow: repeating the same request will not help.
        cls = ProviderBadRequest
    message = _scrub(f"{provider}: {what} answered {status}: {vendor_text(body)}", secrets)
    keep_retry = cls is RateLimited or status >= 500
    return cls(
        message,
        provider=provider,
        status=status,
        retry_after=retry_after if keep_retry else None,
    )


def _vendor_code(body: bytes) -> str | None:
    """The ``error.code`` of an OpenAI-style error body, if there is one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def vendor_text(body: bytes) -> str:
    """Return the vendor's error text: the JSON ``error``/``message``/``detail`` or the raw body."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _snippet(body) or "(empty body)"
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "msg"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or json.dumps(value)
            if isinstance(value, str) and value:
                return value[:_MAX_VENDOR_TEXT]
    return _snippet(body)


def _snippet(body: bytes) -> str:
    text = body[: _MAX_VENDOR_TEXT * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:_MAX_VENDOR_TEXT]


def _scrub(message: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message
