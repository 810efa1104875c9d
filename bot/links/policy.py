"""Which links may be fetched: the scheme, the host's form, the domain list and every address.

The address rule is the SSRF guard: an address is fetched only when it is public (``is_global``,
not multicast), judged after unwrapping every IPv6 form that carries an IPv4 address
(IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, NAT64
``64:ff9b::/96``, Teredo ``2001::/32``), so ``::ffff:127.0.0.1`` is loopback, not "global".
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")
# Legacy IPv4 spellings inet_aton accepts: 2130706433, 0x7f.1, 017700000001, 127.1.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """The ``links:`` config section: what may be fetched and how much."""

    enabled: bool = True
    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()
    """CIDRs exempted from the private-address refusal (a LAN, a test server)."""
    allowed_domains: tuple[str, ...] = ()
    """Empty: every public host; else only links to these domains and their subdomains."""
    timeout_seconds: float = 60.0
    """Metadata/extraction timeout, and the longest wait for the next byte of a download."""
    download_timeout_seconds: float = 1800.0
    max_bytes: int = 500 * 1024 * 1024

    def networks(self) -> tuple[Network, ...]:
        """``allowed_networks`` parsed (the config has validated them)."""
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (where a packet to it really goes)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _COMPAT and int(address) > 1:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def address_problem(
    address: IPAddress, settings: LinkSettings, networks: tuple[Network, ...] = ()
) -> str | None:
    """Why ``address`` may not be fetched (a short operator's word), or None when it may.

    Multicast and unspecified addresses are never fetched; the rest is allowed when public,
    when ``allow_private_networks`` is set, or when inside one of ``networks``.
    """
    inner = embedded_ipv4(address)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket: judge only the IPv4 address.
        return address_problem(address.ipv4_mapped, settings, networks)
    for candidate in (address, *inner):
        if candidate.is_multicast:
            return "multicast"
        if candidate.is_unspecified:
            return "unspecified"
        if int(candidate) == 0xFFFFFFFF and candidate.version == 4:
            return "broadcast"
    if settings.allow_private_networks:
        return None
    if any(address in net for net in networks if net.version == address.version):
        return None
    for candidate in (address, *inner):
        if not candidate.is_global:
            return _kind(candidate)
    return None


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    return "not public"


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one in any spelling (legacy IPv4 forms included)."""
    text = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A link that passed the checks that need no network: scheme, credentials, host form."""

    url: str
    """Normalised: lower-case scheme and host, a legacy IPv4 spelling written as dotted quad."""
    host: str
    port: int


class UrlProblem(ValueError):
    """A link refused before any lookup; ``reason`` is a key of the fetcher's sentences."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_url(url: str, settings: LinkSettings) -> CheckedUrl:
    """Parse and normalise ``url``; refuse what no network check could make safe.

    Raises:
        UrlProblem: not http(s), credentials in the link, no host, a bad port, a domain outside
            ``allowed_domains``.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlProblem("invalid", f"unparsable link: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlProblem("scheme", f"scheme {scheme or '(none)'!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise UrlProblem("credentials", "the link carries a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlProblem("invalid", "the link has no host")
    literal = literal_address(host)
    if literal is not None:
        host = str(literal)
    if not domain_allowed(host, settings.allowed_domains):
        raise UrlProblem("domain", f"{host} is not in links.allowed_domains")
    port = port or (443 if scheme == "https" else 80)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    normal = SplitResult(scheme, netloc, parts.path or "/", parts.query, "")
    return CheckedUrl(urlunsplit(normal), host, port)


def domain_allowed(host: str, domains: tuple[str, ...]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one (empty: every host)."""
    if not domains:
        return True
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (x.lower().strip(".") for x in domains))
