"""The one exception type a user ever sees, and the wrapper that prints it as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable


class MetricadError(Exception):
    """A mistake in the user's input (a file, a parameter): shown as one line, exit status 1."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main function; a MetricadError becomes one line on stderr and exit 1."""
    try:
        main()
    except MetricadError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
