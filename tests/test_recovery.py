"""Interrupted runs recover, and runs from scratch are identical: the real dvc, temp git repos.

The corpus is the synthetic one (actors 1-4, plus a few broken clips) zipped like the RAVDESS
archive and served by an HTTP server on 127.0.0.1 that the tests start, so the download stage
really downloads. `dvc repro evaluate` is killed with SIGKILL (dvc, the stage and its workers:
the whole process group) at a random point inside one stage; a second `dvc repro evaluate`
must then finish, run again exactly the stages that had not finished, and give the metrics
and the data of an uninterrupted run byte for byte. That run is in another folder and runs
every stage from scratch once, so it also pins that two runs from scratch are identical.

The random kill points come from SER_KILL_SEED when it is set, else from a fresh seed; a
failure message names the seed, so `SER_KILL_SEED=<seed> pytest tests/test_recovery.py`
replays it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf
import yaml

from tests.test_download import NAME, Server, serve
from tests.test_pipeline import dvc, edit_params, git, project_files, stages_run

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ("download", "featurize", "split", "augment", "train", "evaluate")
# What the stages write that later stages read; data/model is left out because model.keras
# records when it was saved, so its bytes differ between identical runs.
DATA = ("data/raw", "data/manifest.csv", "data/features", "data/split.csv", "data/augmented")
METRICS = ("metrics/evaluate.json", "metrics/train.json")
SEED = int(os.environ.get("SER_KILL_SEED", random.SystemRandom().randrange(10**6)))
BROKEN = {  # clip -> the reason the manifest must give
    "03-01-03-01-01-01-03": "unreadable: ",
    "03-01-04-01-01-01-03": "empty: ",
    "03-01-05-01-01-01-03": "silent: ",
    "03-01-06-01-01-01-03": "corrupt: ",
}

pytestmark = pytest.mark.slow


def broken_clips(folder: Path) -> dict[str, Path]:
    """Broken clips of actor 3 (whose own clips of these names are left out of the zip)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {clip: folder / f"{clip}.wav" for clip in BROKEN}
    names = iter(BROKEN)
    paths[next(names)].write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    sf.write(paths[next(names)], np.zeros(0), 16000)
    sf.write(paths[next(names)], np.zeros(16000), 16000)
    nan = 0.1 * np.random.default_rng(0).standard_normal(16000)
    nan[::50] = np.nan
    sf.write(paths[next(names)], nan, 16000, subtype="FLOAT")
    return paths


@pytest.fixture(scope="module")
def server(tiny_corpus, tmp_path_factory):
    """Serves the corpus zip at server.url(); a "slow" script entry throttles one request."""
    folder = tmp_path_factory.mktemp("archive")
    broken = broken_clips(folder / "broken")
    archive = folder / NAME
    with zipfile.ZipFile(archive, "w") as handle:
        for clip in sorted((tiny_corpus / "speech").rglob("*.wav")):
            if clip.stem.split("-")[4] == "01" and clip.stem not in broken:  # statement 1
                handle.write(clip, f"{clip.parent.name}/{clip.name}")
        for clip, path in broken.items():
            handle.write(path, f"Actor_03/{clip}.wav")
    with serve(Server(content=archive.read_bytes())) as state:
        yield state


def new_project(root: Path, url: str) -> Path:
    """A clone-like copy of the project, with small params, committed in a fresh git repo."""
    for name in project_files():
        destination = root / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination)
    changes = {
        ("data", "corpus"): "ravdess",
        ("data", "ravdess", "speech_url"): url,
        ("split", "test_actors"): [4],
        ("split", "val_actors"): [3],
        ("augment", "noise"): True,  # so that augment has work to be interrupted in
        ("model", "filters"): 8,
        ("model", "stats_epochs"): 4,
        ("model", "speaker_blend"): 0.0,  # no second (whole-speaker) training
        ("train", "epochs"): 3,
    }
    if "folds" in yaml.safe_load((root / "params.yaml").read_text())["split"]:
        changes["split", "folds"] = [1, 2, 3]  # cross-validation needs a fold per actor
    edit_params(root, changes)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "project", cwd=root)
    return root


@dataclass
class Run:
    """What one `dvc repro` did: its output; when each stage's processes were first and last
    seen (seconds from the start) and the CPU seconds they had used; where it was killed."""

    output: str = ""
    returncode: int | None = None
    seen: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, dict[int, float]] = field(default_factory=dict)  # stage -> pid -> seconds
    killed_in: str | None = None

    def cpu_seconds(self, stage: str) -> float:
        return sum(self.cpu.get(stage, {}).values())

    def finished_before_kill(self) -> set[str]:
        return {stage for stage in self.seen if stage != self.killed_in}

    def watch(self, dvc_process: psutil.Process, now: float) -> str | None:
        """Note which stage runs below dvc and the CPU its processes used; return the stage."""
        try:
            children = dvc_process.children(recursive=True)
        except psutil.Error:
            return None
        for child in children:
            try:
                command = child.cmdline()
                # The stage script, under the shell dvc starts it with, and its workers.
                processes = [child, *child.children(recursive=True)]
            except psutil.Error:
                continue
            stage = next(
                (s for s in CHAIN if any(part.endswith(f"stages/{s}.py") for part in command)),
                None,
            )
            if stage is None:
                continue
            self.seen.setdefault(stage, [now, now])[1] = now
            used = self.cpu.setdefault(stage, {})
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                used[process.pid] = max(used.get(process.pid, 0.0), times.user + times.system)
            return stage
        return None


def repro(project: Path, kill_when: Callable[[str | None, Run], bool] | None = None) -> Run:
    """Run `dvc repro evaluate`, watching which stage runs; SIGKILL everything when asked."""
    run = Run()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        # The copy's own library, not the checkout the virtual environment points at.
        "PYTHONPATH": str(project / "src"),
    }
    log = project.parent / f"{project.name}-repro.log"
    started = time.monotonic()
    with open(log, "w+") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvc"), "repro", "evaluate"],
            cwd=project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: dvc, the stage, the workers
        )
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            now = time.monotonic() - started
            stage = run.watch(watched, now)
            if kill_when is not None and kill_when(stage, run):
                os.killpg(process.pid, signal.SIGKILL)
                run.killed_in = stage
                process.wait()
                break
            if now > 900:
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"dvc repro in {project} ran for 15 minutes")
            time.sleep(0.02)
        run.returncode = process.wait()
        _wait_for_group(process.pid)
        output.seek(0)
        run.output = output.read()
    return run


def _wait_for_group(pgid: int) -> None:
    """Wait until no process of the killed group is left (workers die a moment later)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for p in psutil.process_iter(["pid"]) if _group(p) == pgid]
        if not alive:
            return
        time.sleep(0.05)


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, PermissionError):
        return None


def tree_digest(path: Path) -> dict[str, str]:
    """relative path -> SHA-256 of every file under path (or of path itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        str(file.relative_to(path.parent)): hashlib.sha256(file.read_bytes()).hexdigest()
        for file in files
    }


def snapshot(project: Path) -> dict[str, dict[str, str]]:
    return {name: tree_digest(project / name) for name in (*DATA, *METRICS)}


@dataclass
class Reference:
    project: Path
    run: Run
    snapshot: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory) -> Reference:
    """One uninterrupted run from scratch, shared by every test of this module."""
    project = new_project(tmp_path_factory.mktemp("reference") / "project", server.url())
    run = repro(project)
    assert run.returncode == 0, run.output
    assert stages_run(run.output) == set(CHAIN)
    return Reference(project, run, snapshot(project))


def test_uninterrupted_run_excludes_broken_clips_with_their_reason(reference):
    metrics = json.loads((reference.project / "metrics" / "evaluate.json").read_text())
    for clip, reason in BROKEN.items():
        assert metrics["excluded"][clip].startswith(reason), (clip, metrics["excluded"])
    assert metrics["clips"] == {"train": 60, "val": 26, "test": 30}
    assert set(reference.run.seen) == set(CHAIN)


def test_runs_killed_inside_each_stage_in_turn_recover_to_the_uninterrupted_result(
    reference, server, tmp_path
):
    """Kill in download; kill the rerun in the next stage still to run of featurize, augment
    and train; and so on. A last rerun must give exactly the uninterrupted run's results."""
    rng = random.Random(SEED)
    project = new_project(tmp_path / "project", server.url())
    part = project / "data" / "downloads" / f"{NAME}.part"
    size = len(server.content)
    first_request = len(server.requests)
    # Where to kill: the download once a random share of the archive has arrived (it is
    # throttled), the others after a random share of the CPU seconds they took uninterrupted
    # (less load-dependent than wall time; at most half, as a loaded machine varies it too).
    threshold = int(rng.uniform(0.05, 0.9) * size)
    budgets = {
        stage: rng.uniform(0.02, 0.5) * reference.run.cpu_seconds(stage)
        for stage in ("featurize", "augment", "train")
    }
    where = f"SER_KILL_SEED={SEED}: download at {threshold} of {size} bytes, " + ", ".join(
        f"{stage} at {budget:.2f} CPU s" for stage, budget in budgets.items()
    )
    pending = {"download", *budgets}

    def kill_when(stage, run):
        if stage not in pending:
            return False
        if stage == "download":
            return part.exists() and part.stat().st_size >= threshold
        return run.cpu_seconds(stage) >= budgets[stage]

    finished: set[str] = set()  # stages a run completed before it was killed
    server.script = ["slow"]
    while pending:
        killed = repro(project, kill_when)
        server.script = []
        assert killed.killed_in in pending, f"{where}: not killed in any of {pending}"
        assert killed.returncode != 0, where
        assert not stages_run(killed.output) & finished, f"{where}: a finished stage reran"
        finished |= killed.finished_before_kill()
        pending.discard(killed.killed_in)
        check_nothing_half_written_passes_for_complete(project, killed.killed_in, reference, where)

    recovered = repro(project)
    assert recovered.returncode == 0, f"{where}\n{recovered.output}"
    assert stages_run(recovered.output) == set(CHAIN) - finished, where
    # The second request resumed the download where the kill had left the .part file.
    ranges = [request["range"] for request in server.requests[first_request:]]
    assert ranges[0] is None and len(ranges) == 2, f"{where}: {ranges}"
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) >= threshold, where
    final = snapshot(project)
    for name in (*METRICS, *DATA):
        assert final[name] == reference.snapshot[name], f"{where}: {name} differs"
    leftovers = [str(p.relative_to(project)) for p in (project / "data").rglob(".*tmp*")]
    assert not leftovers, f"{where}: temporary files left behind: {leftovers}"


def check_nothing_half_written_passes_for_complete(
    project: Path, killed: str, reference: Reference, where: str
) -> None:
    """DVC knows the killed stage is not done, and every output that exists either is what
    the uninterrupted run wrote or belongs to a stage DVC will run again."""
    status = dvc("status", "--json", cwd=project).stdout
    changed = set(json.loads(status)) if status.strip() else set()
    assert killed in changed, f"{where}: dvc status does not list {killed}: {status}"
    after_kill = snapshot(project)
    owners = {
        "data/raw": "download",
        "data/manifest.csv": "download",
        "data/features": "featurize",
        "data/split.csv": "split",
        "data/augmented": "augment",
    }
    for name in DATA:
        if after_kill[name] and after_kill[name] != reference.snapshot[name]:
            assert owners[name] in changed, f"{where}: {name} differs, yet counts as done"
