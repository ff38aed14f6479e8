"""librosa's numba cache stays whole when fresh processes import it at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ser.features.librosa_import import COMPILED_MODULES, _exclusive, lock_path

# Each process first compiles a different number of its own functions, so that the names
# numba gives its compiled code differ from process to process, as between a test worker,
# a stage and a pool worker; then it imports librosa and runs YIN on both float types.
PROCESS = """
import sys
import numba
import numpy as np
for offset in range(int(sys.argv[1])):
    numba.njit(lambda x, offset=offset: x + offset)(1.0)
from ser.features.librosa_import import import_librosa
librosa = import_librosa()
for dtype in (np.float32, np.float64):
    signal = np.sin(np.arange(8000) * 0.05).astype(dtype)
    librosa.yin(signal, fmin=60, fmax=400, sr=16000)
print("ok")
"""


@pytest.mark.slow
def test_fresh_processes_compile_one_at_a_time_and_leave_a_cache_that_loads(tmp_path):
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}

    def start(offset: int) -> subprocess.Popen:
        command = [sys.executable, "-c", PROCESS, str(offset)]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    with _exclusive(lock_path()):  # as if another process were compiling
        processes = [start(offset) for offset in (0, 3, 7)]
        time.sleep(4)
        assert [process.poll() for process in processes] == [None, None, None]
        assert not list(cache.rglob("*.nbi")), "compiled before the lock was free"
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()[-2000:]
        assert out.decode().strip() == "ok"
    # librosa 0.11 caches 12 indexes for these modules; at least the pitch module's two.
    assert len(list(cache.rglob("*pi_wrapper*.nbi"))) == 2
    # A fresh process loads what they left (a mismatched wrapper and kernel would crash it).
    loader = start(1)
    out, err = loader.communicate(timeout=300)
    assert loader.returncode == 0, f"exit {loader.returncode}: {err.decode()[-2000:]}"


def test_a_process_that_has_imported_them_does_not_take_the_lock_again(monkeypatch):
    import ser.features.librosa_import as module

    module.import_librosa()
    assert all(name in sys.modules for name in COMPILED_MODULES)

    def no_lock(path):
        raise AssertionError(f"took {path} again")

    monkeypatch.setattr(module, "_exclusive", no_lock)
    assert module.import_librosa().__name__ == "librosa"
