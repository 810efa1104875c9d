"""Which links and addresses may be fetched: the SSRF table, URL normalising, finding links."""

from __future__ import annotations

import ipaddress

import pytest

from bot.links import LinkInfo, LinkSettings, find_links
from bot.links.direct import file_name, media_kind
from bot.links.policy import UrlProblem, address_problem, check_url, literal_address

DEFAULT = LinkSettings()

FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "240.0.0.1",  # reserved
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::",  # 6to4 carrying 127.0.0.1
    "2002:a00:1::1",  # 6to4 carrying 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 carrying 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 carrying 169.254.169.254
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_links_policy_refuses_every_non_public_address(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), DEFAULT) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_links_policy_admits_public_addresses(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), DEFAULT) is None


def test_links_policy_private_networks_open_but_never_multicast_or_unspecified() -> None:
    lan = LinkSettings(allow_private_networks=True)
    for address in ("192.168.1.10", "127.0.0.1", "::1", "fd00::5", "100.64.0.1"):
        assert address_problem(ipaddress.ip_address(address), lan) is None
    for address in ("0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"):
        assert address_problem(ipaddress.ip_address(address), lan) is not None


def test_links_policy_allowed_networks_exempt_only_what_they_name() -> None:
    settings = LinkSettings(allowed_networks=("127.0.0.1/32", "192.168.7.0/24"))
    networks = settings.networks()

    def problem(text: str) -> str | None:
        return address_problem(ipaddress.ip_address(text), settings, networks)

    assert problem("127.0.0.1") is None
    assert problem("::ffff:127.0.0.1") is None  # the same socket destination
    assert problem("192.168.7.20") is None
    assert problem("127.0.0.2") == "loopback"
    assert problem("192.168.8.1") == "private"
    assert problem("169.254.169.254") == "link-local"


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("example.com", None),
        ("1.2.3.example", None),
    ],
)
def test_links_policy_reads_every_ipv4_spelling(host: str, address: str | None) -> None:
    found = literal_address(host)
    if found is not None and isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped:
        found = found.ipv4_mapped
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/a.mp3", "scheme"),
        ("data:audio/mpeg;base64,AAAA", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("gopher://example.com/", "scheme"),
        ("example.com/a.mp3", "scheme"),
        ("http://user:secret@example.com/a.mp3", "credentials"),
        ("http:///nohost", "invalid"),
        ("http://example.com:99999/", "invalid"),
    ],
)
def test_links_policy_refuses_links_before_any_lookup(url: str, reason: str) -> None:
    with pytest.raises(UrlProblem) as caught:
        check_url(url, DEFAULT)
    assert caught.value.reason == reason


def test_links_policy_normalises_the_link() -> None:
    checked = check_url("HTTP://Example.COM./a%20b.mp3?x=1#frag", DEFAULT)
    assert checked.url == "http://example.com/a%20b.mp3?x=1"
    assert (checked.host, checked.port) == ("example.com", 80)
    checked = check_url("http://0x7f.1:8080/x", DEFAULT)
    assert (checked.url, checked.host, checked.port) == (
        "http://127.0.0.1:8080/x",
        "127.0.0.1",
        8080,
    )
    assert check_url("https://[::1]/", DEFAULT).url == "https://[::1]/"


def test_links_policy_allowed_domains_admit_subdomains_only() -> None:
    settings = LinkSettings(allowed_domains=("example.com",))
    assert check_url("https://media.example.com/a", settings).host == "media.example.com"
    assert check_url("https://example.com/a", settings).host == "example.com"
    for url in ("https://badexample.com/", "https://example.com.evil.org/", "http://8.8.8.8/"):
        with pytest.raises(UrlProblem) as caught:
            check_url(url, settings)
        assert caught.value.reason == "domain"


def test_links_find_links_in_order_once_without_trailing_punctuation() -> None:
    text = (
        "Listen (https://example.com/a.mp3). Also <https://example.org/talk?id=3>, and "
        "https://en.wikipedia.org/wiki/Foo_(bar) then https://example.com/a.mp3! "
        "ftp://example.com/x and file:///etc/passwd are not links; HTTP://EXAMPLE.NET/x."
    )
    assert find_links(text) == [
        "https://example.com/a.mp3",
        "https://example.org/talk?id=3",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
        "HTTP://EXAMPLE.NET/x",
    ]
    assert find_links("no links here, just http:// and text") == []


def test_links_info_round_trips_through_json_shapes() -> None:
    info = LinkInfo("https://example.com/a", "ytdl", "A talk", 3600.5, 12345, "Generic")
    data = {**info.as_dict(), "downloaded": True}
    assert LinkInfo.from_dict(data) == info
    bare = LinkInfo("https://example.com/b.mp3", "direct", None, None, None)
    assert LinkInfo.from_dict(bare.as_dict()) == bare


@pytest.mark.parametrize(
    ("content_type", "name", "kind"),
    [
        ("audio/mpeg", "x", "direct"),
        ("video/mp4", "clip", "direct"),
        ("application/ogg", "a", "direct"),
        ("application/octet-stream", "Lecture 3.m4a", "direct"),
        ("", "talk.opus", "direct"),
        ("application/vnd.apple.mpegurl", "index.m3u8", None),
        ("audio/x-mpegurl", "list", None),
        ("text/html", "watch", None),
        ("application/octet-stream", "index.m3u8", None),
        ("application/json", "data.mp3", "other"),
        ("image/png", "cover.png", "other"),
        ("application/octet-stream", "setup.exe", "other"),
    ],
)
def test_links_media_kind_from_type_and_name(
    content_type: str, name: str, kind: str | None
) -> None:
    assert media_kind(content_type, name) == kind


def test_links_file_names_are_safe_and_probeable() -> None:
    assert file_name("Lecture 3", "Lecture 3.ogg", "audio/ogg") == "Lecture 3.ogg"
    assert file_name("../../etc/passwd", "x", "audio/mpeg") == "etc_passwd.mp3"
    assert file_name(None, "download", "audio/mp4") == "recording.m4a"
    assert file_name("a/b\\c:d", "v.webm", None) == "a_b_c_d.webm"
    assert len(file_name("x" * 500, "a.mp3", None)) <= 104
