"""Progress bars on a terminal, silence in logs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def wanted(enabled: bool | None) -> bool:
    """A bar is drawn when asked for, or, by default, when stderr is a terminal."""
    return sys.stderr.isatty() if enabled is None else enabled


def progress_bar(
    items: Iterable[T],
    *,
    desc: str,
    unit: str = "it",
    enabled: bool | None = None,
    total: int | None = None,
) -> Iterator[T]:
    if not wanted(enabled):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, total=total, file=sys.stderr, dynamic_ncols=True)
