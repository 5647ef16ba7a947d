"""Labelled image sets held by the library: loaded (the bundled digits, MNIST and
Fashion-MNIST IDX, CIFAR-10) or made from numpy arrays."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _lib
from ._owned import OwnsHandle
from .errors import check
from .model import as_labels

__all__ = ["Dataset", "load_dataset"]

PathLike = Union[str, "os.PathLike[str]"]

_PRIVATE = object()


class _Storage:
    """Owns one ``reparo_dataset`` handle. The Dataset and every numpy view of the library's
    arrays refer to it, so the handle is freed when the last of them goes, never under a view."""

    def __init__(self, handle: int) -> None:
        self.handle: Optional[int] = handle

    def __del__(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None and _lib is not None and getattr(_lib, "reparo_dataset_free", None) is not None:
            _lib.reparo_dataset_free(handle)


def _view(storage: _Storage, address: Optional[int], ctype: Any, dtype: Any, shape: Tuple[int, ...]) -> np.ndarray:
    """A read-only numpy view of `shape` elements at `address` (memory of `storage`'s handle),
    which keeps `storage` alive."""
    count = int(np.prod(shape))
    if count == 0 or not address:
        return np.empty(shape, dtype=dtype)
    buffer = (ctype * count).from_address(address)
    buffer._storage = storage  # the view's base is `buffer`, which holds the handle's owner
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    array.setflags(write=False)
    return array


class Dataset(OwnsHandle):
    """A labelled image set held by the library (one copy, in the library's memory).

    Make one with :meth:`load` or :meth:`from_arrays`; use it with :meth:`Trainer.fit_native`
    directly, or its arrays with :meth:`Trainer.fit` and :meth:`Model.evaluate`.

    Attributes:
        images: float32 [N, C, H, W], a read-only view of the library's copy (no copy is
            made); for a loaded set, standardized per channel with the training split's mean
            and std (as ``reparo_dataset_load`` does).
        labels: int32 [N], in ``[0, classes)``, a read-only view as ``images``.
        classes: number of classes.
        kind, path, split: what was loaded (``path`` None for the bundled digits; all three
            None for a set made from arrays).

    :meth:`close` (or the end of a ``with`` block) releases the handle: it is freed at once
    unless a view taken from ``images`` or ``labels`` is still referenced, in which case it
    is freed when the last such view goes.
    """

    def __init__(self, handle: int, kind: Optional[str], split: Optional[str], path: Optional[str],
                 *, _token: object = None) -> None:
        if _token is not _PRIVATE:
            raise TypeError("use Dataset.load(...) or Dataset.from_arrays(...)")
        self._storage: Optional[_Storage] = _Storage(handle)
        self.kind = kind
        self.split = split
        self.path = path
        count = ctypes.c_int64()
        c, h, w, k = (ctypes.c_int32() for _ in range(4))
        check(_lib.reparo_dataset_info(handle, ctypes.byref(count), ctypes.byref(c), ctypes.byref(h),
                                       ctypes.byref(w), ctypes.byref(k)))
        images_p = ctypes.POINTER(ctypes.c_float)()
        labels_p = ctypes.POINTER(ctypes.c_int32)()
        check(_lib.reparo_dataset_data(handle, ctypes.byref(images_p), ctypes.byref(labels_p)))
        n = count.value
        self.classes = k.value
        self._images: Optional[np.ndarray] = _view(
            self._storage, ctypes.cast(images_p, ctypes.c_void_p).value, ctypes.c_float, np.float32,
            (n, c.value, h.value, w.value))
        self._labels: Optional[np.ndarray] = _view(
            self._storage, ctypes.cast(labels_p, ctypes.c_void_p).value, ctypes.c_int32, np.int32, (n,))

    @classmethod
    def load(cls, kind: str, path: Optional[PathLike] = None, split: str = "train") -> "Dataset":
        """Loads a dataset through ``reparo_dataset_load``.

        Args:
            kind: ``"digits"`` (bundled UCI digits, 1×8×8; ``path`` None finds the bundled
                ``data/`` folder or ``$REPARO_DATA``), ``"mnist"`` (1×28×28, ``path``
                required), ``"fashion-mnist"`` (1×28×28; ``path`` None: ``$REPARO_FASHION_MNIST``
                if set and non-empty, else ``/usr/share/datasets/fashion-mnist``, where the
                Debian package ``dataset-fashion-mnist`` installs it) or ``"cifar10"``
                (3×32×32, ``path`` required). The IDX files of ``mnist`` and
                ``fashion-mnist`` may be gzipped (``train-images-idx3-ubyte.gz``, …); the
                uncompressed file is read when both are present.
            path: folder of the files, or None.
            split: ``"train"`` or ``"test"``.

        Raises:
            ReparoError: INVALID_ARGUMENT (kind, split), IO (missing folder or files, named),
                FORMAT (bad contents, corrupt or truncated gzip data, naming the file).
        """
        handle = _lib.reparo_dataset_p()
        check(
            _lib.reparo_dataset_load(
                _lib.encode(kind),
                _lib.encode(os.fspath(path)) if path is not None else None,
                _lib.encode(split),
                ctypes.byref(handle),
            )
        )
        return cls._adopt(handle.value, kind, split, os.fspath(path) if path is not None else None)

    @classmethod
    def from_arrays(cls, images: Any, labels: Any, classes: Optional[int] = None) -> "Dataset":
        """Makes a dataset from arrays through ``reparo_dataset_create``: the library copies
        them once (later changes to the arrays do not reach it) and uses the images as they
        are (no standardization).

        Args:
            images: [N, C, H, W] real numbers (N ≥ 1), converted to float32; every value finite.
            labels: N integers in ``[0, classes)``.
            classes: number of classes; None: ``max(labels) + 1``.

        Raises:
            ValueError: shapes or dtypes (checked before calling C).
            ReparoError: INVALID_ARGUMENT (a non-finite value or a label out of range, naming
                the sample; sizes beyond the library's limits), OUT_OF_MEMORY.
        """
        data = np.asarray(images)
        if data.dtype.kind not in "fiub":
            raise ValueError(f"images must hold real numbers, got dtype {data.dtype}")
        if data.ndim != 4 or data.shape[0] == 0:
            raise ValueError(f"images must have shape [N, C, H, W] (NCHW) with N >= 1, got {list(data.shape)}")
        data = np.ascontiguousarray(data, dtype=np.float32)
        targets = as_labels(labels, data.shape[0])
        if classes is None:
            classes = int(targets.max()) + 1
        if not 1 <= classes <= np.iinfo(np.int32).max:
            raise ValueError(f"classes must be in 1...{np.iinfo(np.int32).max}, got {classes}")
        n, c, h, w = data.shape
        handle = _lib.reparo_dataset_p()
        check(
            _lib.reparo_dataset_create(
                data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                targets.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                n, c, h, w, classes, ctypes.byref(handle),
            )
        )
        return cls._adopt(handle.value, None, None, None)

    @classmethod
    def _adopt(cls, handle: int, kind: Optional[str], split: Optional[str], path: Optional[str]) -> "Dataset":
        try:
            return cls(handle, kind, split, path, _token=_PRIVATE)
        except BaseException:
            _lib.reparo_dataset_free(handle)
            raise

    # --- lifetime ----------------------------------------------------------------------------

    @property
    def handle(self) -> int:
        """The ``reparo_dataset *`` (for the ctypes layer)."""
        if self._storage is None or self._storage.handle is None:
            raise ValueError("operation on a closed Dataset")
        return self._storage.handle

    @property
    def closed(self) -> bool:
        return self._storage is None

    def close(self) -> None:
        """Releases the dataset (see the class docstring for when its memory is freed).
        Idempotent."""
        self._storage = self._images = self._labels = None

    # --- contents ----------------------------------------------------------------------------

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            raise ValueError("operation on a closed Dataset")
        return self._images

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            raise ValueError("operation on a closed Dataset")
        return self._labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> Tuple[int, int, int]:
        """Sample shape ``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        if self._storage is None:
            return "<reparo.Dataset closed>"
        source = f"kind={self.kind!r} split={self.split!r}" if self.kind is not None else "from arrays"
        return f"<reparo.Dataset {source} count={len(self)} shape={self.shape} classes={self.classes}>"


def load_dataset(kind: str, path: Optional[PathLike] = None, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of :meth:`Dataset.load` (read-only views that keep the library's
    copy alive; ``.copy()`` them to change them)."""
    dataset = Dataset.load(kind, path, split)
    return dataset.images, dataset.labels
