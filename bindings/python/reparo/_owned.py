"""The lifetime protocol shared by the classes that own a library object."""

from __future__ import annotations

from typing import Any, TypeVar

from . import _lib

_Self = TypeVar("_Self", bound="OwnsHandle")


class OwnsHandle:
    """Base of :class:`Model`, :class:`Trainer` and :class:`Dataset`: a ``with`` block calls
    :meth:`close`, and garbage collection frees a handle nobody closed. A subclass defines
    ``close`` and names, in ``_free_function``, the ``_lib`` function that frees ``_handle``
    (empty when it frees its object another way)."""

    _free_function = ""
    _handle: Any = None

    def close(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # getattr: __init__ may have failed before the handle was set; `_lib` is None while the
        # interpreter shuts down.
        handle = getattr(self, "_handle", None)
        free = getattr(_lib, self._free_function, None) if self._free_function and _lib is not None else None
        if handle is not None and free is not None:
            self._handle = None
            free(handle)
