"""User-facing errors.

Raise :class:`DescribemeError` (or a subclass) at a boundary — config, CLI, file input,
service connection — with a message that says what is wrong and what to do. The CLI prints
such errors as one line and exits non-zero; anything else is a bug and gets a traceback.
``ValueError``/``TypeError`` remain the right choice inside library code: the CLI shows those
as one line too when they carry a message.
"""

from __future__ import annotations


class DescribemeError(Exception):
    """An error the user can act on; ``str(error)`` is the whole message."""

    exit_code = 2


class ConfigError(DescribemeError, ValueError):
    """A configuration file or override is malformed."""


class DataError(DescribemeError, ValueError):
    """A dataset, image or video file is missing, unreadable or inconsistent."""


class ServiceError(DescribemeError):
    """A service (Redis, Ray) could not be reached or started."""

    exit_code = 3
