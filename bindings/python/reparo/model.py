"""The :class:`Model` class: a handle on a ``reparo_model``."""

from __future__ import annotations

import ctypes
import json
import operator
import os
import weakref
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from . import _lib
from ._owned import OwnsHandle
from .errors import ReparoError, Status, check, options_json

__all__ = ["Model", "MAX_BATCH", "as_images", "as_labels"]

#: Largest batch one ``reparo_infer`` call accepts (reparo.h); :meth:`Model.infer` splits
#: larger arrays into chunks of this size.
MAX_BATCH = 65536

PathLike = Union[str, "os.PathLike[str]"]

_FLOAT_P = ctypes.POINTER(ctypes.c_float)
_INT32_P = ctypes.POINTER(ctypes.c_int32)


def as_images(images: Any, shape: Tuple[int, int, int], what: str = "images") -> np.ndarray:
    """``images`` as a C-contiguous float32 array [N, C, H, W] (copied only if needed).

    Raises:
        ValueError: the array is not 4-D or its [C, H, W] is not ``shape``.
    """
    array = np.asarray(images)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{what} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(shape):
        c, h, w = shape
        raise ValueError(
            f"{what} must have shape [N, {c}, {h}, {w}] (NCHW) for this model, got {list(array.shape)}"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def as_labels(labels: Any, count: int) -> np.ndarray:
    """``labels`` as a C-contiguous int32 vector of ``count`` entries.

    Raises:
        ValueError: wrong shape, or values that are not integers.
    """
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != count:
        raise ValueError(f"labels must be a vector of {count} class indices, got shape {list(array.shape)}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {array.dtype}")
    if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
        raise ValueError("labels do not fit in int32")
    return np.ascontiguousarray(array, dtype=np.int32)


def _float_pointer(array: np.ndarray) -> "ctypes._Pointer[ctypes.c_float]":
    return array.ctypes.data_as(_FLOAT_P)


def _int32_pointer(array: np.ndarray) -> "ctypes._Pointer[ctypes.c_int32]":
    return array.ctypes.data_as(_INT32_P)


class Model(OwnsHandle):
    """A Reparo model (dense, pruned, expanded or collapsed CNN).

    Create one with :meth:`create` or :meth:`load`; free it with :meth:`close` or a ``with``
    block (it is also freed when garbage-collected). Reading calls (:meth:`infer`,
    :meth:`evaluate`, :meth:`save`, :meth:`clone`, :meth:`describe`) may run from many
    threads at once; :meth:`expand`, :meth:`collapse` and training must not overlap with any
    other call on the same model.
    """

    # Garbage collection frees the handle; a live trainer holds a strong reference to its
    # models, so no trainer can be using a model collected here.
    _free_function = "reparo_model_free"

    def __init__(self, handle: int, *, _token: object = None) -> None:
        if _token is not _PRIVATE:
            raise TypeError("use Model.create(...) or Model.load(...)")
        self._handle: Optional[int] = handle
        # Trainers that use this model (as student or teacher); it cannot be closed before them.
        self._trainers: "weakref.WeakSet[Any]" = weakref.WeakSet()
        c, h, w, k = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()
        check(_lib.reparo_model_shape(handle, ctypes.byref(c), ctypes.byref(h), ctypes.byref(w), ctypes.byref(k)))
        self._input_shape = (c.value, h.value, w.value)
        self._classes = k.value

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def create(cls, spec: Union[Mapping[str, Any], str], seed: int = 0) -> "Model":
        """A model with freshly initialized weights.

        Args:
            spec: a preset (``{"preset": "resnet20", "classes": 10}``) or a generic spec
                (``{"input": [C, H, W], "classes": K, "layers": [...]}``), as a dict or JSON
                text; see ``reparo_model_create`` in reparo.h.
            seed: seed of the weight initialization.

        Raises:
            ReparoError: INVALID_ARGUMENT naming the offending field; OUT_OF_MEMORY.
        """
        text = spec if isinstance(spec, str) else json.dumps(dict(spec), allow_nan=False)
        if not 0 <= int(seed) < 2**64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        handle = _lib.reparo_model_p()
        check(_lib.reparo_model_create(_lib.encode(text), int(seed), ctypes.byref(handle)))
        return cls._adopt(handle)

    @classmethod
    def load(cls, path: PathLike) -> "Model":
        """Loads a model written by :meth:`save`.

        Raises:
            ReparoError: IO (missing, directory, unreadable), FORMAT (malformed file).
        """
        handle = _lib.reparo_model_p()
        check(_lib.reparo_model_load(_lib.encode(os.fspath(path)), ctypes.byref(handle)))
        return cls._adopt(handle)

    @classmethod
    def import_onnx(cls, path: PathLike, **options: Any) -> "Model":
        """Imports an ONNX model of a CNN (what ``torch.onnx.export`` writes for VGG- and
        ResNet-style models, or :meth:`export_onnx`); layers are named after the PyTorch modules.

        Options: ``input`` ([C, H, W], needed when the graph's C, H or W is symbolic) and
        ``state`` ("dense" or "pruned"). The supported ops are listed in the README.

        Raises:
            ReparoError: INVALID_ARGUMENT (bad options; an op or attribute outside the supported
            set, naming the node), IO (missing, unreadable), FORMAT (not a valid ONNX model).
        """
        handle = _lib.reparo_model_p()
        check(_lib.reparo_model_import_onnx(_lib.encode(os.fspath(path)), options_json(options), ctypes.byref(handle)))
        return cls._adopt(handle)

    @classmethod
    def _adopt(cls, handle: "ctypes.c_void_p") -> "Model":
        value = handle.value
        if not value:
            raise ReparoError(Status.INTERNAL, "Reparo reported success but returned a NULL model")
        try:
            return cls(value, _token=_PRIVATE)
        except BaseException:
            _lib.reparo_model_free(value)
            raise

    # --- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._handle is None

    def close(self) -> None:
        """Frees the C model. Idempotent.

        Raises:
            ReparoError: STATE while a :class:`Trainer` still uses this model (close the
                trainer first).
        """
        if self._handle is None:
            return
        live = len(self._trainers)
        if live:
            raise ReparoError(
                Status.STATE, f"the model is used by {live} open Trainer(s); close them before the model"
            )
        handle, self._handle = self._handle, None
        _lib.reparo_model_free(handle)

    @property
    def handle(self) -> int:
        """The raw ``reparo_model *`` (for the ctypes layer).

        Raises:
            ValueError: the model is closed.
        """
        if self._handle is None:
            raise ValueError("operation on a closed Model")
        return self._handle

    # --- description -------------------------------------------------------------------------

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """Input shape ``(C, H, W)``."""
        return self._input_shape

    @property
    def classes(self) -> int:
        """Number of output classes."""
        return self._classes

    @property
    def threads(self) -> int:
        """Compute threads of this model's inference (0 = every core the process may use).
        Only this model's :meth:`infer` and :meth:`evaluate` use it (a trainer has its own
        ``threads`` option); results do not depend on it. May be set while other threads infer."""
        value = ctypes.c_int32()
        check(_lib.reparo_model_threads(self.handle, ctypes.byref(value)))
        return int(value.value)

    @threads.setter
    def threads(self, threads: int) -> None:
        value = operator.index(threads)
        if not -(2**31) <= value < 2**31:  # ctypes would wrap it; the library names the range
            raise ValueError(f"threads must be in 0...256 (0 = every core), got {value}")
        check(_lib.reparo_model_set_threads(self.handle, value))

    def describe(self) -> Dict[str, Any]:
        """The model's description (``reparo_model_describe``) as a dict: ``state``, ``input``,
        ``classes``, ``parameters``, ``flops``, ``layers``."""
        handle = self.handle
        length = ctypes.c_size_t()
        check(_lib.reparo_model_describe(handle, None, 0, ctypes.byref(length)))
        while True:
            capacity = length.value + 1
            buffer = ctypes.create_string_buffer(capacity)
            check(_lib.reparo_model_describe(handle, buffer, capacity, ctypes.byref(length)))
            if length.value < capacity:
                return json.loads(buffer.value.decode("utf-8"))

    @property
    def state(self) -> str:
        """``"dense"``, ``"pruned"``, ``"expanded"`` or ``"collapsed"``."""
        return str(self.describe()["state"])

    @property
    def parameter_count(self) -> int:
        """Trainable scalars."""
        return int(self.describe()["parameters"])

    def __repr__(self) -> str:
        if self._handle is None:
            return "<reparo.Model closed>"
        info = self.describe()
        return (
            f"<reparo.Model {info['state']} input={list(self._input_shape)} classes={self._classes} "
            f"parameters={info['parameters']}>"
        )

    # --- files -------------------------------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Saves as safetensors (PyTorch tensor names, F32; atomic replace).

        Raises:
            ReparoError: IO (unwritable path), INVALID_ARGUMENT.
        """
        check(_lib.reparo_model_save(self.handle, _lib.encode(os.fspath(path))))

    def export_onnx(self, path: PathLike, **options: Any) -> None:
        """Writes the model as ONNX (opset 17, input "input" [batch, C, H, W], output "logits";
        atomic replace). Collapse an expanded model first.

        Options: ``opset`` (17, the only one written).

        Raises:
            ReparoError: STATE (an expanded model), IO (unwritable path), INVALID_ARGUMENT.
        """
        check(_lib.reparo_model_export_onnx(self.handle, _lib.encode(os.fspath(path)), options_json(options)))

    def clone(self) -> "Model":
        """A deep copy (weights, BatchNorm statistics, state)."""
        handle = _lib.reparo_model_p()
        check(_lib.reparo_model_clone(self.handle, ctypes.byref(handle)))
        return Model._adopt(handle)

    # --- inference ---------------------------------------------------------------------------

    def infer(self, images: Any) -> np.ndarray:
        """Eval-mode logits.

        Args:
            images: array-like [N, C, H, W] (copied to contiguous float32 if needed).

        Returns:
            float32 array [N, classes].

        Raises:
            ValueError: wrong shape (checked before calling C).
        """
        handle = self.handle
        data = as_images(images, self._input_shape)
        count = data.shape[0]
        logits = np.empty((count, self._classes), dtype=np.float32)
        for start in range(0, count, MAX_BATCH):
            stop = min(start + MAX_BATCH, count)
            chunk_in = data[start:stop]
            chunk_out = logits[start:stop]
            check(
                _lib.reparo_infer(
                    handle, _float_pointer(chunk_in), stop - start, _float_pointer(chunk_out), chunk_out.size
                )
            )
        return logits

    def evaluate(self, images: Any, labels: Any) -> Tuple[float, float]:
        """Eval-mode ``(accuracy, mean cross-entropy)`` over labelled images.

        Raises:
            ValueError: wrong shapes or an empty set.
            ReparoError: INVALID_ARGUMENT for labels outside ``[0, classes)``.
        """
        handle = self.handle
        data = as_images(images, self._input_shape)
        if data.shape[0] == 0:
            raise ValueError("evaluate needs at least one image")
        targets = as_labels(labels, data.shape[0])
        accuracy, loss = ctypes.c_float(), ctypes.c_float()
        check(
            _lib.reparo_evaluate(
                handle,
                _float_pointer(data),
                _int32_pointer(targets),
                data.shape[0],
                ctypes.byref(accuracy),
                ctypes.byref(loss),
            )
        )
        return float(accuracy.value), float(loss.value)

    # --- the method --------------------------------------------------------------------------

    def prune(self, **options: Any) -> "Model":
        """Structured filter pruning into a new model (this one is unchanged).

        Options (reparo.h): ``ratio`` (0.5), ``criterion`` ("l1", "l2", "bn_gamma", "random"),
        ``seed``, ``layers`` ({conv name: ratio}), ``residual`` ("block", "coupled").

        Raises:
            ReparoError: INVALID_ARGUMENT (options), STATE (an expanded model).
        """
        handle = _lib.reparo_model_p()
        check(_lib.reparo_prune(self.handle, options_json(options), ctypes.byref(handle)))
        return Model._adopt(handle)

    def expand(self, **options: Any) -> None:
        """Expands conv (and optionally linear) layers in place into chains of three linear
        factors whose product is the original weight (outputs unchanged).

        Options: ``rate`` (4), ``layers`` ("conv", "all" or a list of names), ``seed``.

        Raises:
            ReparoError: STATE (already expanded, or a trainer uses it), INVALID_ARGUMENT.
        """
        check(_lib.reparo_expand(self.handle, options_json(options)))

    def collapse(self, **options: Any) -> None:
        """Multiplies every expanded chain back into one compact layer, in place.

        Options: ``fold_batchnorm`` (False).

        Raises:
            ReparoError: STATE (nothing to collapse, or a trainer uses it), INVALID_ARGUMENT.
        """
        check(_lib.reparo_collapse(self.handle, options_json(options)))


_PRIVATE = object()
