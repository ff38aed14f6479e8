"""Speaker-independent speech emotion recognition (SER)."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (CPU features, absl) is noise in stage logs.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
