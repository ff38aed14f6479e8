"""Outputs are never half-written: a writer killed with SIGKILL leaves the previous output,
and the next write leaves nothing of the killed one behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ser.fsutil import atomic_dir, read_json, write_json, write_text

# Writes part of a new output, says so, then waits to be killed.
KILLED_WRITER = """
import sys, time
from pathlib import Path
from ser.fsutil import atomic_dir
with atomic_dir(Path(sys.argv[1])) as folder:
    (folder / "complete.txt").write_text("new")
    with open(folder / "half.bin", "wb") as handle:
        handle.write(b"x" * 100_000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(120)
"""


def kill_while_writing(target: Path) -> None:
    """Run KILLED_WRITER on target and SIGKILL it in the middle of its write."""
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        process.kill()
        process.stdout.close()


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("existing", [True, False])
def test_killed_write_leaves_the_previous_output_and_the_next_write_cleans_up(tmp_path, existing):
    target = tmp_path / "features"
    if existing:
        target.mkdir()
        (target / "complete.txt").write_text("old")
    kill_while_writing(target)
    # The target is the previous output, untouched, or absent: never the half-written one.
    if existing:
        assert names(target) == ["complete.txt"]
        assert (target / "complete.txt").read_text() == "old"
    else:
        assert not target.exists()

    with atomic_dir(target) as folder:
        (folder / "complete.txt").write_text("newer")
    assert names(target) == ["complete.txt"]
    assert (target / "complete.txt").read_text() == "newer"
    assert names(tmp_path) == ["features"]  # the killed write's temporary folder is gone


def test_a_failed_write_keeps_the_previous_output(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "model.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as folder:
        (folder / "model.json").write_text("new")
        raise RuntimeError("training diverged")
    assert names(tmp_path) == ["model"]
    assert (target / "model.json").read_text() == "old"


def test_stale_temporaries_of_other_outputs_are_left_alone(tmp_path):
    other = tmp_path / ".augmented.tmp-abc"
    other.mkdir()
    with atomic_dir(tmp_path / "features") as folder:
        (folder / "a").write_text("a")
    assert names(tmp_path) == [".augmented.tmp-abc", "features"]


def test_json_is_written_whole_with_a_stable_key_order(tmp_path):
    path = tmp_path / "metrics" / "evaluate.json"
    write_json(path, {"b": 1, "a": [1.5, "x"]})
    first = path.read_bytes()
    write_json(path, {"b": 1, "a": [1.5, "x"]})
    assert path.read_bytes() == first == b'{\n  "b": 1,\n  "a": [\n    1.5,\n    "x"\n  ]\n}\n'
    assert read_json(path) == json.loads(first)
    with pytest.raises(ValueError):  # NaN is not JSON: refused, and the old file is kept
        write_json(path, {"accuracy": float("nan")})
    assert path.read_bytes() == first
    write_text(path, "{}\n")
    assert names(path.parent) == ["evaluate.json"]
