"""Speaker-independent speech emotion recognition (SER)."""

__version__ = "0.1.0"
