"""Sharing data and models through a DVC remote, with the real dvc and git: a colleague who
clones the repo and pulls gets every output, and `dvc repro` then has nothing to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_pipeline import STAGES, dvc, git, stages_run, tiny_project

pytestmark = pytest.mark.slow


def test_a_clone_pulls_every_output_from_a_local_remote_and_reruns_nothing(
    tmp_path, tmp_path_factory
):
    origin, output = tiny_project(tmp_path_factory, "origin")
    remote, clone = tmp_path / "remote", tmp_path / "clone"
    assert stages_run(output) == set(STAGES)
    dvc("remote", "add", "-d", "local", str(remote), cwd=origin)
    git("add", ".dvc/config", cwd=origin)
    git("commit", "-qm", "a local DVC remote", cwd=origin)
    dvc("push", cwd=origin)
    assert any(path.is_file() for path in remote.rglob("*"))
    # data/ holds what DVC caches (audio, manifest, features, split, models), not git.
    cached = sorted(
        path.relative_to(origin) for path in (origin / "data").rglob("*") if path.is_file()
    )
    assert Path("data/model/model.keras") in cached and len(cached) > 360  # 360 clips

    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    assert not (clone / "data").exists()
    dvc("pull", cwd=clone)
    pulled = sorted(
        path.relative_to(clone) for path in (clone / "data").rglob("*") if path.is_file()
    )
    assert pulled == cached
    for name in cached:
        assert (clone / name).read_bytes() == (origin / name).read_bytes(), name

    assert json.loads(dvc("status", "--json", cwd=clone).stdout) == {}
    assert "Data and pipelines are up to date" in dvc("status", cwd=clone).stdout
    modified = {name: (clone / name).stat().st_mtime_ns for name in cached}
    again = dvc("repro", cwd=clone)
    assert stages_run(again.stdout) == set()
    unchanged = set(re.findall(r"Stage '([\w@-]+)' didn't change", again.stdout))
    assert unchanged == set(STAGES), again.stdout
    assert {name: (clone / name).stat().st_mtime_ns for name in cached} == modified
    assert git("status", "--porcelain", cwd=clone) == ""
