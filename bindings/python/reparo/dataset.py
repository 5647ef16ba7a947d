"""Labelled image sets loaded by the library (the bundled digits, MNIST and Fashion-MNIST IDX,
CIFAR-10)."""

from __future__ import annotations

import ctypes
import dataclasses
import os
from typing import Optional, Tuple, Union

import numpy as np

from . import _lib
from .errors import check

__all__ = ["Dataset", "load_dataset"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A labelled image set held in numpy arrays (copies; no C handle stays open).

    Attributes:
        images: float32 [N, C, H, W], standardized per channel with the training split's
            mean and std (as ``reparo_dataset_load`` does).
        labels: int32 [N], in ``[0, classes)``.
        classes: number of classes.
        kind, path, split: what was loaded (``path`` None for the bundled digits).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: int
    kind: str
    split: str
    path: Optional[str] = None

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
        try:
            count = ctypes.c_int64()
            c, h, w, k = (ctypes.c_int32() for _ in range(4))
            check(
                _lib.reparo_dataset_info(
                    handle, ctypes.byref(count), ctypes.byref(c), ctypes.byref(h), ctypes.byref(w), ctypes.byref(k)
                )
            )
            images_p = ctypes.POINTER(ctypes.c_float)()
            labels_p = ctypes.POINTER(ctypes.c_int32)()
            check(_lib.reparo_dataset_data(handle, ctypes.byref(images_p), ctypes.byref(labels_p)))
            n = count.value
            shape = (n, c.value, h.value, w.value)
            if n == 0:
                images = np.empty(shape, dtype=np.float32)
                labels = np.empty((0,), dtype=np.int32)
            else:
                images = np.ctypeslib.as_array(images_p, shape=shape).copy()
                labels = np.ctypeslib.as_array(labels_p, shape=(n,)).copy()
        finally:
            _lib.reparo_dataset_free(handle)
        images.setflags(write=True)
        return cls(
            images=images,
            labels=labels,
            classes=k.value,
            kind=kind,
            split=split,
            path=os.fspath(path) if path is not None else None,
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> Tuple[int, int, int]:
        """Sample shape ``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def load_dataset(kind: str, path: Optional[PathLike] = None, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of :meth:`Dataset.load`."""
    dataset = Dataset.load(kind, path, split)
    return dataset.images, dataset.labels
