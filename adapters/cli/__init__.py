"""The command line as one more front end: ``voicebot run`` starts the chat adapters, and
``transcribe``, ``speak``, ``jobs``, ``status``, ``check-config`` and ``db copy`` use the same core
from a shell."""

from __future__ import annotations

from adapters.cli.main import main

__all__ = ["main"]
