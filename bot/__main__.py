"""``python -m bot`` runs the voicebot CLI."""

from bot.cli import main

raise SystemExit(main())
