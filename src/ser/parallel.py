"""Mapping a function over many clips on several cores, results in input order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ser.progress import progress_bar

Job = TypeVar("Job")
Result = TypeVar("Result")


def _single_threaded() -> None:
    # One BLAS thread per worker, always: results then do not depend on the number of
    # workers or cores (BLAS sums in a thread-dependent order), and a pool on every core
    # does not contend with BLAS threads (OpenBLAS spin-waits; featurize ran 2x slower).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def map_clips(
    function: Callable[[Job], Result],
    jobs: list[Job],
    *,
    n_jobs: int,
    desc: str,
    unit: str = "clip",
    progress: bool | None = None,
    chunksize: int = 16,
) -> Iterator[Result]:
    """Yield function(job) for each job, in order, using n_jobs worker processes (1 = here)."""
    if n_jobs <= 1 or len(jobs) <= 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            yield from progress_bar(
                map(function, jobs), desc=desc, unit=unit, enabled=progress, total=len(jobs)
            )
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=n_jobs, initializer=_single_threaded) as pool:
        results: Iterable[Result] = pool.map(function, jobs, chunksize=chunksize)
        yield from progress_bar(results, desc=desc, unit=unit, enabled=progress, total=len(jobs))
