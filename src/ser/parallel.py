"""Mapping a function over many clips on several cores or a Dask cluster, results in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ser.errors import ConfigError
from ser.progress import progress_bar

Job = TypeVar("Job")
Result = TypeVar("Result")

# How long to wait for a Dask scheduler to answer, and for it to have a worker.
CONNECT_TIMEOUT_SECONDS = 10
# Chunks of jobs in flight on a Dask cluster per worker thread: enough to keep every thread
# busy, few enough that results waiting to be collected stay a small, fixed amount of memory.
CHUNKS_IN_FLIGHT_PER_THREAD = 4


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
    scheduler: str | None = None,
    preload: str | None = None,
) -> Iterator[Result]:
    """Yield function(job) for each job, in order.

    On n_jobs worker processes (1 = here), or, when ``scheduler`` is a dask.distributed
    scheduler address (``features.scheduler``), on that cluster's workers, which must be able
    to import this package. ``function`` must be a module-level function.

    Worker processes start, and the jobs are queued, as soon as map_clips is called: the
    caller can do other work (load a model) while they compute, and should close() the
    result when it stops early. They fork from this process, unless ``preload`` names a
    module: then they fork from a server process that imports that module first (a warm-up)
    while this one goes on (multiprocessing's forkserver, where the platform has it). The
    caller's main script must then be safe to import (``if __name__ == "__main__":``).
    """

    def bar(results: Iterable[Result]) -> Iterator[Result]:
        return progress_bar(results, desc=desc, unit=unit, enabled=progress, total=len(jobs))

    if scheduler is not None:
        return bar(_map_on_cluster(function, jobs, scheduler, chunksize))
    # One job goes to a worker only with a preload: the worker's warm-up then overlaps the
    # caller's own (a cold `ser predict FILE` imports librosa there while TensorFlow loads here).
    if n_jobs <= 1 or not jobs or (len(jobs) == 1 and preload is None):
        return _map_here(function, jobs, bar)
    workers = min(n_jobs, len(jobs))
    return _PoolMap(function, jobs, n_jobs=workers, chunksize=chunksize, preload=preload, bar=bar)


def _map_here(function: Callable[[Job], Result], jobs: list[Job], bar) -> Iterator[Result]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield from bar(map(function, jobs))


class _PoolMap(Iterator):
    """function over jobs on worker processes started at creation; results in order."""

    def __init__(self, function, jobs, *, n_jobs, chunksize, preload, bar):
        import multiprocessing
        from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

        context = None
        if preload is not None and "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([preload])
        self._pool = ProcessPoolExecutor(
            max_workers=n_jobs, mp_context=context, initializer=_single_threaded
        )
        self._submitter = None
        try:
            if context is None:
                # Forks the workers now, before the caller goes on (and, say, starts threads).
                submitted: Future = Future()
                submitted.set_result(self._pool.map(function, jobs, chunksize=chunksize))
            else:
                # Starting a worker waits for the server's warm-up: queue the jobs from a
                # thread, so that the caller goes on at once. Nothing forks this process.
                self._submitter = ThreadPoolExecutor(1, thread_name_prefix="ser-submit")
                submitted = self._submitter.submit(
                    self._pool.map, function, jobs, chunksize=chunksize
                )
        except BaseException:
            self.close()
            raise
        self._results = bar(_collect(submitted))

    def __next__(self):
        try:
            return next(self._results)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop: jobs not started are dropped, and the workers exit."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._submitter is not None:
            self._submitter.shutdown(wait=True)
        results = getattr(self, "_results", None)
        if results is not None:
            results.close()


def _collect(submitted) -> Iterator:
    yield from submitted.result()


def _run_chunk(function: Callable[[Job], Result], chunk: list[Job]) -> list[Result]:
    """One Dask task: function over a chunk of jobs, with one BLAS thread (as the pool's)."""
    _single_threaded()
    return [function(job) for job in chunk]


def connect(scheduler: str):
    """A dask.distributed Client of the scheduler at this address that has a worker.

    Raises ConfigError naming ``features.scheduler`` when dask.distributed is missing, or the
    scheduler does not answer or has no worker within CONNECT_TIMEOUT_SECONDS.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            f"features.scheduler: {scheduler!r} needs dask.distributed, which is not installed; "
            "pip install 'ser[dask]', or set features.scheduler: null"
        ) from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ConfigError(
            f"features.scheduler: no Dask scheduler answered at {scheduler} within "
            f"{CONNECT_TIMEOUT_SECONDS} s ({type(error).__name__}); start one (`dask scheduler`, "
            "`dask worker ADDRESS`) or set features.scheduler: null"
        ) from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError):
        client.close()
        raise ConfigError(
            f"features.scheduler: the Dask scheduler at {scheduler} has no worker after "
            f"{CONNECT_TIMEOUT_SECONDS} s; start one with `dask worker {scheduler}`"
        ) from None
    return client


def _map_on_cluster(
    function: Callable[[Job], Result], jobs: list[Job], scheduler: str, chunksize: int
) -> Iterator[Result]:
    """function over jobs on a Dask cluster, in order, with a bounded number of chunks in
    flight: memory stays the same whatever the number of jobs."""
    client = connect(scheduler)
    in_flight: deque = deque()
    try:
        threads = max(1, sum(client.nthreads().values()))
        limit = CHUNKS_IN_FLIGHT_PER_THREAD * threads
        for start in range(0, len(jobs), chunksize):
            chunk = jobs[start : start + chunksize]
            # pure=False: no hashing of the arguments; every chunk is its own task.
            in_flight.append(client.submit(_run_chunk, function, chunk, pure=False))
            if len(in_flight) >= limit:
                yield from in_flight.popleft().result()
        while in_flight:
            yield from in_flight.popleft().result()
    finally:
        if in_flight:
            client.cancel(list(in_flight))
        client.close()
