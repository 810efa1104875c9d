"""Links: which URLs may be fetched, and fetching their audio safely (direct files and yt-dlp)."""

from __future__ import annotations

from bot.links.fetcher import LinkFetcher
from bot.links.find import find_links
from bot.links.model import DownloadCancelled, Downloaded, LinkInfo, LinkRefused, ProgressFn
from bot.links.policy import LinkSettings
from bot.links.proxy import Resolver, SystemResolver

__all__ = [
    "DownloadCancelled",
    "Downloaded",
    "LinkFetcher",
    "LinkInfo",
    "LinkRefused",
    "LinkSettings",
    "ProgressFn",
    "Resolver",
    "SystemResolver",
    "find_links",
]
