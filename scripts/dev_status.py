"""The HTTP status of Home Assistant's front page (scripts/develop).

    python scripts/dev_status.py URL

Prints the status code, or 0 if nothing answered within 5 s.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def ui_status(url: str) -> int:
    """Return the status code of a GET of `url`; 0 if it could not be read."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            status: int = response.status
            return status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


if __name__ == "__main__":
    print(ui_status(sys.argv[1]))
