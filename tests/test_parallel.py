"""map_clips on local processes and on a real dask.distributed cluster (features.scheduler)."""

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ser import parallel
from ser.errors import ConfigError
from ser.features import augment, extract
from ser.params import parse_params
from tests.conftest import set_key


@pytest.fixture(scope="module")
def scheduler():
    """The address of a two-worker (one thread each) Dask cluster on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def feature_params(params_dict):
    return parse_params(params_dict).features


@pytest.fixture
def paths(tiny_corpus, tmp_path):
    clips = sorted(str(p) for p in (tiny_corpus / "speech" / "Actor_01").glob("*.wav"))[:6]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    return [*clips[:3], str(broken), *clips[3:]]


def test_results_come_back_in_input_order_from_the_cluster(scheduler):
    jobs = list(range(-500, 0))
    results = parallel.map_clips(math.fabs, jobs, n_jobs=1, desc="t", scheduler=scheduler)
    assert list(results) == [float(-job) for job in jobs]


def test_featurize_on_the_cluster_equals_featurize_here(scheduler, feature_params, paths):
    local, local_reasons = extract.featurize_many(paths, feature_params, n_jobs=1)
    on_cluster = dataclasses.replace(feature_params, scheduler=scheduler)
    remote, remote_reasons = extract.featurize_many(paths, on_cluster)
    assert remote_reasons == local_reasons and remote_reasons[3].startswith("unreadable")
    assert local[0].any()
    np.testing.assert_array_equal(remote, local)


def test_augment_on_the_cluster_equals_augment_here(scheduler, params_dict, tiny_corpus):
    params = parse_params(params_dict)
    settings = dataclasses.replace(params.augment, noise=True, pitch=True, copies=2)
    paths = sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[:6]
    clips = [(path.stem, str(path)) for path in paths]  # 12 copies: two chunks, two workers
    local = augment.augment_many(clips, feature_params=params.features, augment_params=settings)
    on_cluster = dataclasses.replace(params.features, scheduler=scheduler)
    # Twice: the workers' own threads draw from Python's global generator while tasks run,
    # which once made some copies differ from run to run.
    for _ in range(2):
        remote = augment.augment_many(clips, feature_params=on_cluster, augment_params=settings)
        assert remote[0] == local[0] and len(local[0]) == 12
        np.testing.assert_array_equal(remote[1], local[1])


def _chunks_on_scheduler(dask_scheduler) -> int:
    return sum(str(key).startswith("_run_chunk") for key in dask_scheduler.tasks)


def test_only_a_bounded_number_of_chunks_is_in_flight(scheduler):
    from distributed import Client

    # 500 chunks of 4; two worker threads: CHUNKS_IN_FLIGHT_PER_THREAD * 2 are submitted
    # ahead (a chunk the client has just let go of may still be listed for a moment).
    limit = parallel.CHUNKS_IN_FLIGHT_PER_THREAD * 2
    seen = []
    with Client(scheduler, set_as_default=False) as observer:
        results = parallel.map_clips(
            math.sqrt, list(range(2000)), n_jobs=1, desc="t", chunksize=4, scheduler=scheduler
        )
        for index, _ in enumerate(results):
            if index % 50 == 0:
                seen.append(observer.run_on_scheduler(_chunks_on_scheduler))
    assert 0 < max(seen) <= 2 * limit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_is_a_one_line_error_naming_the_key(
    monkeypatch, feature_params, paths
):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_SECONDS", 1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    on_cluster = dataclasses.replace(feature_params, scheduler=address)
    with pytest.raises(
        ConfigError, match=r"features\.scheduler: no Dask scheduler answered at"
    ) as e:
        extract.featurize_many(paths, on_cluster)
    assert address in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "value",
    [None, "tcp://127.0.0.1:8786", "tcp://scheduler.example.org", "tls://[::1]:8786"],
)
def test_scheduler_addresses_are_accepted(params_dict, value):
    params = parse_params(set_key(params_dict, "features.scheduler", value))
    assert params.features.scheduler == value


@pytest.mark.parametrize(
    "value", ["127.0.0.1:8786", "http://host:8786", "tcp://", "tcp://host:port", 8786, ""]
)
def test_a_bad_scheduler_address_is_refused_before_any_work(params_dict, value):
    with pytest.raises(ConfigError, match=r"^features\.scheduler: expected null or a Dask"):
        parse_params(set_key(params_dict, "features.scheduler", value))


def test_dask_is_imported_only_when_a_scheduler_is_set():
    code = (
        "import sys\n"
        "from ser import parallel\n"
        "from ser.data import dataset\n"
        "from ser.features import extract, store\n"
        "from ser.serve import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(name for name in ('dask', 'distributed') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_copies_do_not_depend_on_other_threads_of_the_worker(params_dict, tiny_corpus, tmp_path):
    """A worker thread that draws from Python's global generator (as a Dask worker's own
    threads do now and then) leaves the copies of a task on another thread unchanged."""
    from distributed import Client, LocalCluster

    def draw_random_numbers(until: str) -> None:
        import os
        import random
        import time

        while not os.path.exists(until):
            for _ in range(1000):
                random.random()
            # Let the augmenting thread run: a loop that never waits holds the GIL so much
            # that each of its releases (numpy, librosa) waits a switch interval to get it
            # back, and 4 copies took minutes instead of seconds. The draws still interleave.
            time.sleep(0.001)

    params = parse_params(params_dict)
    settings = dataclasses.replace(params.augment, noise=True, pitch=True, copies=2)
    paths = sorted((tiny_corpus / "speech" / "Actor_04").glob("*.wav"))[:2]
    clips = [(path.stem, str(path)) for path in paths]
    local = augment.augment_many(clips, feature_params=params.features, augment_params=settings)
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        stop = tmp_path / "stop"
        busy = client.submit(draw_random_numbers, str(stop), pure=False)
        while busy.status == "pending" and not client.processing()[next(iter(client.nthreads()))]:
            time.sleep(0.05)
        remote = augment.augment_many(
            clips,
            feature_params=dataclasses.replace(
                params.features, scheduler=cluster.scheduler_address
            ),
            augment_params=settings,
        )
        stop.touch()
        busy.result()
    np.testing.assert_array_equal(remote[1], local[1])


def _worker_facts(job: int) -> tuple[int, int, int, bool]:
    """(job, its process, that process's parent, whether the probe was imported before it)."""
    return job, os.getpid(), os.getppid(), "tests.preload_probe" in sys.modules


PRELOAD_SCRIPT = """
import json, os, sys
from ser import parallel
from tests.test_parallel import _worker_facts
if __name__ == "__main__":
    preload = sys.argv[1] or None
    results = parallel.map_clips(
        _worker_facts, list(range(int(sys.argv[2]))), n_jobs=2, desc="t", chunksize=2,
        preload=preload
    )
    print(json.dumps({"pid": os.getpid(), "results": list(results)}))
"""


@pytest.mark.parametrize("jobs", [40, 1])
@pytest.mark.parametrize("preload", [None, "tests.preload_probe"])
def test_pool_workers_fork_from_here_or_from_a_server_that_preloads(preload, jobs, tmp_path):
    # In a fresh interpreter: a process has one forkserver, whose preload its start fixed.
    script = tmp_path / "probe.py"
    script.write_text(PRELOAD_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), preload or "", str(jobs)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    facts = json.loads(done.stdout)
    assert [job for job, _, _, _ in facts["results"]] == list(range(jobs))
    workers = {worker for _, worker, _, _ in facts["results"]}
    parents = {parent for _, _, parent, _ in facts["results"]}
    preloaded = {flag for _, _, _, flag in facts["results"]}
    if preload is None and jobs == 1:  # one job is not worth a worker: it runs here
        assert workers == {facts["pid"]} and preloaded == {False}
    elif preload is None:
        assert parents == {facts["pid"]} and preloaded == {False}
    else:  # even one job: the server's warm-up overlaps this process's own
        assert facts["pid"] not in parents | workers and preloaded == {True}


@pytest.mark.parametrize("preload", [None, "tests.preload_probe"])
def test_closing_a_pool_map_early_drops_the_jobs_not_started(preload):
    # 200 jobs of 0.1 s on 2 workers take 10 s; a caller that stops after 2 does not wait.
    results = parallel.map_clips(
        time.sleep, [0.1] * 200, n_jobs=2, desc="t", chunksize=1, preload=preload
    )
    assert [next(results), next(results)] == [None, None]
    start = time.perf_counter()
    results.close()
    assert time.perf_counter() - start < 5
    with pytest.raises(StopIteration):
        next(results)
