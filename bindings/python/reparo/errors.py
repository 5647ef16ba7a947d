"""Status codes and the exception that carries them."""

from __future__ import annotations

import enum
import json
from typing import Any, Mapping, Optional

from . import _lib

__all__ = ["Status", "ReparoError", "check", "options_json"]


class Status(enum.IntEnum):
    """``reparo_status`` values (reparo.h)."""

    OK = 0
    INVALID_ARGUMENT = 1  # NULL, size, shape, handle, option or spec field is wrong
    IO = 2  # file missing, unreadable, unwritable, or a directory
    FORMAT = 3  # malformed weights or dataset file
    STATE = 4  # the model is not in a state that allows the call
    NUMERIC = 5  # non-finite loss or gradient; nothing was changed
    OUT_OF_MEMORY = 6  # allocation failed or exceeds the size limits
    INTERNAL = 7  # a bug in Reparo


class ReparoError(Exception):
    """A failed Reparo call.

    Attributes:
        status: the ``reparo_status`` code (an int; compare with :class:`Status`).
        status_name: its name from ``reparo_status_name`` (``"REPARO_ERR_IO"``, ...).
        message: the text of ``reparo_last_error()`` for the failed call.
    """

    def __init__(self, status: int, message: str, status_name: Optional[str] = None) -> None:
        self.status = int(status)
        self.status_name = status_name if status_name is not None else _status_name(self.status)
        self.message = message
        super().__init__(f"{self.status_name} ({self.status}): {message}")

    def __reduce__(self) -> Any:  # picklable, e.g. across multiprocessing
        return (ReparoError, (self.status, self.message, self.status_name))


def _status_name(status: int) -> str:
    return _lib.reparo_status_name(status).decode("utf-8", "replace")


def check(status: int) -> None:
    """Raises :class:`ReparoError` for a non-zero status, with this thread's last error.

    Must be called right after the failing call, on the same thread, before any other Reparo
    call (the message is only valid until then).
    """
    if status != Status.OK:
        message = _lib.reparo_last_error().decode("utf-8", "replace")
        raise ReparoError(status, message)


def options_json(options: Mapping[str, Any]) -> Optional[bytes]:
    """Options as the JSON text the C API takes (None, meaning defaults, when empty)."""
    if not options:
        return None
    return _lib.encode(json.dumps(dict(options), allow_nan=False))
