"""``python -m bot.text``: every shipped catalog complete, no fuzzy entry, same placeholders."""

from __future__ import annotations

import sys

from bot.text.checks import problems


def main() -> int:
    """Print each catalog problem; exit 1 when there is any."""
    found = problems()
    for line in found:
        print(line)
    print("catalogs ok" if not found else f"{len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
