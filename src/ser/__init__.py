"""Speaker-independent speech emotion recognition (SER)."""

__version__ = "0.1.0"

import contextlib as _contextlib
import importlib.machinery as _machinery
import logging as _logging
import os as _os
import sys as _sys

# TensorFlow's C++ logging, set before anything imports TensorFlow (every entry point, the
# `ser` command and the stages, imports this package first). Level 3 keeps only FATAL: its
# ERROR level is start-up noise here ("All log messages before absl::InitializeLog()",
# tf.data's "NodeDef mentions attribute use_unbounded_threadpool", cuInit without a GPU),
# while its real errors reach Python as exceptions, which still print. A value already set
# wins, so TF_CPP_MIN_LOG_LEVEL=0 (or 1) brings the logs back; 2, the usual way to quiet
# TensorFlow, asks for less, not more, so the quiet import below stays. TF_ENABLE_ONEDNN_OPTS
# stays unset: it would change the numbers, and its "oneDNN custom operations" line is INFO.
_LOGS_ASKED_FOR = _os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3").strip() in {"0", "1"}
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TensorFlow's Python logger: its WARNINGs here are hints for TensorFlow's own developers
# ("triggered tf.function retracing" when a process predicts with several models, as the
# evaluate stage and the benchmarks do). ERROR and above still print.
_logging.getLogger("tensorflow").setLevel(_logging.ERROR)


# Some TensorFlow builds (2.21 among them) log through absl before reading
# TF_CPP_MIN_LOG_LEVEL: "All log messages before absl::InitializeLog()" and the oneDNN line,
# printed while `import tensorflow` runs. So the first import of tensorflow, wherever it
# happens, runs with file descriptor 2 on /dev/null; Python errors it raises still print,
# after it. Not when TF_CPP_MIN_LOG_LEVEL asks for the logs.


@_contextlib.contextmanager
def _stderr_silenced():
    _sys.stderr.flush()
    saved = _os.dup(2)
    null = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(null, 2)
        yield
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(null)


class _QuietLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        with _stderr_silenced():
            self.loader.exec_module(module)


class _QuietTensorFlowImport:
    """A meta path finder for the tensorflow package only, used once."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        if self in _sys.meta_path:
            _sys.meta_path.remove(self)
        spec = _machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


if not _LOGS_ASKED_FOR and "tensorflow" not in _sys.modules:
    _sys.meta_path.insert(0, _QuietTensorFlowImport())
