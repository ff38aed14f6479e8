"""Speaker-independent speech emotion recognition (SER)."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ logging, set before anything imports TensorFlow (every entry point, the
# `ser` command and the stages, imports this package first). Level 3 keeps only FATAL: its
# ERROR level is start-up noise here ("All log messages before absl::InitializeLog()",
# tf.data's "NodeDef mentions attribute use_unbounded_threadpool", cuInit without a GPU),
# while its real errors reach Python as exceptions, which still print. A value already set
# wins, so TF_CPP_MIN_LOG_LEVEL=0 brings the logs back. TF_ENABLE_ONEDNN_OPTS stays unset:
# it would change the numbers, and its "oneDNN custom operations" line is INFO, hidden too.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TensorFlow's Python logger: its WARNINGs here are hints for TensorFlow's own developers
# ("triggered tf.function retracing" when a process predicts with several models, as the
# evaluate stage and the benchmarks do). ERROR and above still print.
import logging as _logging

_logging.getLogger("tensorflow").setLevel(_logging.ERROR)
