"""One error root for the core; every failure a user can see carries a short, specific sentence."""

from __future__ import annotations

from bot.text import Msg, msg


class BotError(Exception):
    """Root of every error voicebot raises on purpose.

    ``text`` is what a chat user sees, translated for each reader (:class:`bot.text.Msg`): one
    short sentence, no secrets, no stack; ``user_message`` is its English form (the CLI).
    The operator's log gets ``str(exc)`` and the chained cause.
    """

    default_message: Msg = msg("Something went wrong.")

    def __init__(
        self, message: str | Msg | None = None, *, user_message: str | Msg | None = None
    ) -> None:
        shown = user_message or message or self.default_message
        super().__init__(str(message or shown))
        self.text = shown if isinstance(shown, Msg) else Msg(shown)

    @property
    def user_message(self) -> str:
        """The user's sentence in English."""
        return str(self.text)


class ConfigError(BotError):
    """The configuration is invalid; ``problems`` lists every one with its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))


class InputError(BotError):
    """What the user sent cannot be processed (bad audio, empty text, too long...)."""


class AudioError(InputError):
    """The audio could not be decoded or is not audio at all."""


class AudioTooLong(InputError):
    """The audio exceeds a size or duration limit even after re-encoding."""

    def __init__(self, message: str | Msg, *, limit_minutes: float) -> None:
        super().__init__(message)
        self.limit_minutes = limit_minutes


class ProviderError(BotError):
    """A speech provider refused or failed a request.

    Attributes:
        provider: the provider instance's name (a key of the config's ``providers:``).
        status: HTTP status when there was one.
        retry_after: seconds the provider asked us to wait, when it said so.
        retryable: whether repeating the same request later can succeed.
        request_sent: False only when the request provably never reached the provider (connection
            refused, DNS failure): the one case where resubmitting cannot pay twice.
    """

    retryable = False
    default_message = msg("The speech service failed.")

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        user_message: str | Msg | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, user_message=user_message or self.default_message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.request_sent = request_sent


class ProviderNotConfigured(ProviderError):
    """The provider is needed but has no API key (or is unknown)."""

    default_message = msg("That speech provider is not configured on this bot.")


class ProviderBadRequest(ProviderError):
    """400: the provider rejected the request as malformed or unsupported."""

    default_message = msg("The speech service rejected this request.")


class ProviderAuthError(ProviderError):
    """401/403: the API key is wrong or revoked (an operator problem)."""

    default_message = msg("The bot's speech service key was rejected; the operator has been told.")


class InsufficientBalance(ProviderError):
    """402: the operator's provider account has no funds."""

    default_message = msg(
        "The bot's speech service account is out of credit; the operator has been told."
    )


class PayloadTooLarge(ProviderError):
    """413: the upload is too large for the provider."""

    default_message = msg("This audio is too large for the speech service.")


class RateLimited(ProviderError):
    """429: too many requests; ``retry_after`` holds the provider's hint."""

    retryable = True
    default_message = msg("The speech service is busy; the job will be retried.")


class ProviderUnavailable(ProviderError):
    """5xx, timeouts, connection failures, malformed answers: transient from our point of view."""

    retryable = True
    default_message = msg("The speech service is unavailable right now.")


class ProviderUnreachable(ProviderUnavailable):
    """No connection at all (refused, DNS, TLS): the request provably never left.

    ``host`` is ``name:port`` and ``reason`` a few words (``connection refused``); the operator
    message says what to check.
    """

    default_message = msg("The speech service can't be reached right now.")

    def __init__(self, message: str, *, provider: str, host: str, reason: str) -> None:
        super().__init__(message, provider=provider, request_sent=False)
        self.host = host
        self.reason = reason


class ProviderTimeout(ProviderUnavailable):
    """No complete answer within the instance's ``timeout`` (a hanging or overloaded server)."""

    default_message = msg("The speech service did not answer in time; please try again later.")


class MalformedAnswer(ProviderUnavailable):
    """A 2xx answer that is not the documented shape (an HTML page, garbage JSON...)."""

    default_message = msg(
        "The speech service answered with something that is not a valid reply; "
        "the operator has been told."
    )


class UnknownModel(ProviderBadRequest):
    """404 from a model route: the provider does not know the configured model."""

    default_message = msg(
        "The speech service does not know the configured model; the operator has been told."
    )


class EndpointNotFound(ProviderBadRequest):
    """404 without an API error body: nothing answers at that URL (``base_url`` is wrong)."""

    default_message = msg(
        "The speech service address is wrong (nothing answers there); the operator has been told."
    )


class ContentPolicyViolation(ProviderError):
    """The provider refused the text under its content policy (final)."""

    default_message = msg("The speech service refused this text under its content policy.")


class UnknownJob(ProviderError):
    """The provider does not know the ticket (404 from a status route, or ``success: false``)."""

    default_message = msg("The speech service lost track of this job.")


class AudioExpired(UnknownJob):
    """404/410 on a generated audio URL: the file is gone (or was never published)."""

    default_message = msg("The speech service no longer has the generated audio; please try again.")


class ProviderJobFailed(ProviderError):
    """The provider reported that the job itself failed."""

    default_message = msg("The speech service could not process this audio.")


class DeliveryError(BotError):
    """A platform refused to take a reply.

    ``permanent`` means retrying can never succeed (bot blocked, chat gone, 403).
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
