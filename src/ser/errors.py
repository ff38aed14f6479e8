"""The project's error types: one for bad settings, one for bad data."""


class SerError(Exception):
    """Base class: every error the project raises on purpose derives from it."""


class ConfigError(SerError, ValueError):
    """A parameter value is not allowed; the message names the key and what is allowed."""


class DataError(SerError):
    """Input data (an archive, a download, a corpus) is unusable; the message says what and why."""
