"""The ``links:`` section: safe defaults, networks and domains validated, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.links import LinkSettings
from bot.model.errors import ConfigError
from testkit.support import make_config


def test_config_links_defaults_are_safe(tmp_path: Path) -> None:
    assert make_config(tmp_path).links == LinkSettings()
    assert LinkSettings().allow_private_networks is False and LinkSettings().enabled is True


def test_config_links_reads_every_key(tmp_path: Path) -> None:
    links = make_config(
        tmp_path,
        links={
            "enabled": False,
            "allow_private_networks": True,
            "allowed_networks": ["192.168.1.0/24", "10.1.2.3", "fd00::/8"],
            "allowed_domains": ["Example.com", "*.podcasts.org"],
            "timeout_seconds": 30,
            "download_timeout_seconds": 600,
            "max_megabytes": 2.5,
        },
    ).links
    assert links == LinkSettings(
        enabled=False,
        allow_private_networks=True,
        allowed_networks=("192.168.1.0/24", "10.1.2.3/32", "fd00::/8"),
        allowed_domains=("example.com", "podcasts.org"),
        timeout_seconds=30.0,
        download_timeout_seconds=600.0,
        max_bytes=int(2.5 * 1024 * 1024),
    )


def test_config_links_lists_every_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(
            tmp_path,
            links={
                "allowed_networks": ["192.168.1.0/24", "10.0.0.300/8", "lan"],
                "allowed_domains": ["https://example.com/", "ok.org"],
                "timeout_seconds": 0,
                "max_megabytes": -1,
                "allow_private": True,
            },
        )
    problems = caught.value.problems
    assert any("links.allowed_networks: '10.0.0.300/8' is not a network" in p for p in problems)
    assert any("links.allowed_networks: 'lan' is not a network" in p for p in problems)
    assert any("links.allowed_domains: 'https://example.com/'" in p for p in problems)
    assert any(p.startswith("links.timeout_seconds:") for p in problems)
    assert any(p.startswith("links.max_megabytes:") for p in problems)
    assert "links.allow_private: unknown key" in problems
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, links={"allowed_networks": "10.0.0.0/8"})
    assert any("links.allowed_networks: expected a list" in p for p in caught.value.problems)
