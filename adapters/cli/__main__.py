"""``python -m adapters.cli``: the ``voicebot`` command without its installed script."""

from adapters.cli.main import main

raise SystemExit(main())
