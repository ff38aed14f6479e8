"""librosa, imported so that processes starting together cannot corrupt numba's cache.

librosa compiles its ``numba.guvectorize`` functions (YIN's parabolic interpolation, zero
crossings, local maxima) when their modules are first imported, and caches each as two
files: the kernel and the gufunc wrapper that calls it by a name carrying a per-process
counter. When two processes compile on a fresh install at once (the tests on two cores,
featurize's workers, several ``dvc exp`` runs), one can keep the kernel of the first and
the wrapper of the second; every later process then loads a wrapper that calls a missing
symbol and dies of a segmentation fault in ``librosa.yin``. Compiling takes about 20 s;
loading the cache, about 2 s.

Here the first import in each process happens under an exclusive lock on a file in the
temporary directory, shared by every process of this user on the machine: the first one
compiles and writes the cache, the others wait and then load it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

# The modules whose import compiles numba functions that this package, or the transforms it
# uses, reach (checked with librosa 0.11).
COMPILED_MODULES = ("librosa.util.utils", "librosa.core.audio", "librosa.core.pitch")


def lock_path() -> Path:
    """The lock file: one per user, in the temporary directory."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"ser-librosa-numba-{user}.lock"


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def import_librosa() -> ModuleType:
    """The librosa module, with its numba-compiled modules imported (under the lock the
    first time in this process)."""
    if not all(name in sys.modules for name in COMPILED_MODULES):
        with _exclusive(lock_path()):
            for name in COMPILED_MODULES:
                importlib.import_module(name)
    import librosa

    return librosa
