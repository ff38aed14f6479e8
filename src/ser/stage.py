"""What every stage script shares: logging, the one-line error, worker counts."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from ser.errors import SerError


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); a SerError becomes one line on stderr and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        main()
    except SerError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def workers(n_jobs: int) -> int:
    """features.n_jobs, with 0 meaning every core this process may use."""
    if n_jobs > 0:
        return n_jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
