"""Low-level ctypes layer over ``libreparo.so``: one declaration per function of reparo.h.

This module mirrors ``include/reparo.h`` one to one (names, argument order, types) and does
nothing else: no error translation, no numpy. The friendly classes in :mod:`reparo` build on
it, the way llama-cpp-python's ``llama`` builds on ``llama_cpp``.

The library is looked up, in order, at:

1. ``$REPARO_LIBRARY`` (a path to the shared library),
2. ``libreparo.so`` inside this package folder (a wheel that bundles it),
3. ``.build-release/release/libreparo.so`` in a parent folder of this file (a checkout of
   the repository after ``scripts/build.sh``).

Opaque handles are ``ctypes.c_void_p`` values (``None`` for NULL). ctypes releases the GIL
around every call, so Python threads really do run ``reparo_infer`` concurrently.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import sys
from ctypes import POINTER, c_char, c_char_p, c_float, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "LIBRARY_PATH",
    "FUNCTIONS",
    "lib",
    "reparo_status",
    "reparo_model_p",
    "reparo_trainer_p",
    "reparo_dataset_p",
    "reparo_step_result",
    "reparo_progress_callback",
    "find_library",
    "MISSING",
]

LIBRARY_NAME = "libreparo.so" if sys.platform != "darwin" else "libreparo.dylib"
_BUILD_RELATIVE = pathlib.Path(".build-release") / "release" / LIBRARY_NAME


def find_library() -> pathlib.Path:
    """Returns the path of the Reparo shared library (see the module docstring for the order).

    Raises:
        OSError: if ``$REPARO_LIBRARY`` names a missing file, or no library is found; the
            message says how to build one.
    """
    override = os.environ.get("REPARO_LIBRARY")
    if override:
        path = pathlib.Path(override).expanduser()
        if not path.is_file():
            raise OSError(f"$REPARO_LIBRARY is set to {override!r}, which is not a file")
        return path.resolve()
    here = pathlib.Path(__file__).resolve().parent
    bundled = here / LIBRARY_NAME
    if bundled.is_file():
        return bundled
    for folder in here.parents:
        candidate = folder / _BUILD_RELATIVE
        if candidate.is_file():
            return candidate
    raise OSError(
        f"{LIBRARY_NAME} was not found: build it with `scripts/build.sh` in the Reparo repository "
        f"(it writes .build-release/release/{LIBRARY_NAME}), then either keep this package inside "
        f"that checkout, copy the library next to {here / '__init__.py'}, or set $REPARO_LIBRARY "
        "to its path. It needs OpenBLAS at run time (Debian/Ubuntu: apt-get install libopenblas0)."
    )


# --- types ---------------------------------------------------------------------------------

reparo_status = c_int32
reparo_model_p = c_void_p  # reparo_model *   (opaque)
reparo_trainer_p = c_void_p  # reparo_trainer * (opaque)
reparo_dataset_p = c_void_p  # reparo_dataset * (opaque)


class reparo_step_result(ctypes.Structure):
    """``reparo_step_result``: five floats, then an int64 (C layout: step at offset 24)."""

    _fields_ = [
        ("loss", c_float),
        ("ce_loss", c_float),
        ("kd_loss", c_float),
        ("accuracy", c_float),
        ("learning_rate", c_float),
        ("step", c_int64),
    ]


# typedef int32_t (*reparo_progress_callback)(const reparo_step_result *result, int32_t epoch,
#     int32_t epochs, int32_t batch, int32_t batches, float epoch_loss, float epoch_accuracy,
#     void *user_data);
reparo_progress_callback = ctypes.CFUNCTYPE(
    c_int32, POINTER(reparo_step_result), c_int32, c_int32, c_int32, c_int32, c_float, c_float, c_void_p
)


# --- declarations --------------------------------------------------------------------------
# name → (argtypes, restype), in the order of reparo.h. A test compares these names with the
# header's declarations, so a new C function without a Python declaration fails the suite.

FUNCTIONS: Dict[str, Tuple[List[Any], Any]] = {
    # Library
    "reparo_version": ([], c_char_p),
    "reparo_last_error": ([], c_char_p),
    "reparo_status_name": ([reparo_status], c_char_p),
    "reparo_system_info": ([POINTER(c_char), c_size_t, POINTER(c_size_t)], reparo_status),
    # Models
    "reparo_model_create": ([c_char_p, c_uint64, POINTER(reparo_model_p)], reparo_status),
    "reparo_model_load": ([c_char_p, POINTER(reparo_model_p)], reparo_status),
    "reparo_model_save": ([reparo_model_p, c_char_p], reparo_status),
    "reparo_model_export_onnx": ([reparo_model_p, c_char_p, c_char_p], reparo_status),
    "reparo_model_import_onnx": ([c_char_p, c_char_p, POINTER(reparo_model_p)], reparo_status),
    "reparo_model_clone": ([reparo_model_p, POINTER(reparo_model_p)], reparo_status),
    "reparo_model_describe": ([reparo_model_p, POINTER(c_char), c_size_t, POINTER(c_size_t)], reparo_status),
    "reparo_spec_resolve": ([c_char_p, POINTER(c_char), c_size_t, POINTER(c_size_t)], reparo_status),
    "reparo_model_shape": (
        [reparo_model_p, POINTER(c_int32), POINTER(c_int32), POINTER(c_int32), POINTER(c_int32)],
        reparo_status,
    ),
    "reparo_model_set_threads": ([reparo_model_p, c_int32], reparo_status),
    "reparo_model_threads": ([reparo_model_p, POINTER(c_int32)], reparo_status),
    "reparo_model_free": ([reparo_model_p], None),
    # Inference and evaluation
    "reparo_infer": ([reparo_model_p, POINTER(c_float), c_int32, POINTER(c_float), c_size_t], reparo_status),
    "reparo_evaluate": (
        [reparo_model_p, POINTER(c_float), POINTER(c_int32), c_int64, POINTER(c_float), POINTER(c_float)],
        reparo_status,
    ),
    # Training
    "reparo_trainer_create": ([reparo_model_p, reparo_model_p, c_char_p, POINTER(reparo_trainer_p)], reparo_status),
    "reparo_trainer_step": (
        [reparo_trainer_p, POINTER(c_float), POINTER(c_int32), c_int32, POINTER(reparo_step_result)],
        reparo_status,
    ),
    "reparo_trainer_free": ([reparo_trainer_p], None),
    "reparo_trainer_save": ([reparo_trainer_p, c_char_p], reparo_status),
    "reparo_trainer_load": ([reparo_trainer_p, c_char_p], reparo_status),
    "reparo_trainer_fit": (
        [reparo_trainer_p, reparo_dataset_p, c_int32, c_int32, c_uint64, reparo_progress_callback, c_void_p],
        reparo_status,
    ),
    "reparo_fit_order": ([c_int64, c_uint64, c_int32, POINTER(c_int64), c_size_t], reparo_status),
    # The method
    "reparo_prune": ([reparo_model_p, c_char_p, POINTER(reparo_model_p)], reparo_status),
    "reparo_expand": ([reparo_model_p, c_char_p], reparo_status),
    "reparo_collapse": ([reparo_model_p, c_char_p], reparo_status),
    # Datasets
    "reparo_dataset_load": ([c_char_p, c_char_p, c_char_p, POINTER(reparo_dataset_p)], reparo_status),
    "reparo_dataset_create": (
        [POINTER(c_float), POINTER(c_int32), c_int64, c_int32, c_int32, c_int32, c_int32, POINTER(reparo_dataset_p)],
        reparo_status,
    ),
    "reparo_dataset_info": (
        [reparo_dataset_p, POINTER(c_int64), POINTER(c_int32), POINTER(c_int32), POINTER(c_int32), POINTER(c_int32)],
        reparo_status,
    ),
    "reparo_dataset_data": (
        [reparo_dataset_p, POINTER(POINTER(c_float)), POINTER(POINTER(c_int32))],
        reparo_status,
    ),
    "reparo_dataset_free": ([reparo_dataset_p], None),
}


def _load() -> Tuple[ctypes.CDLL, pathlib.Path]:
    path = find_library()
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise OSError(
            f"could not load {path}: {error}. Reparo needs OpenBLAS at run time "
            "(Debian/Ubuntu: apt-get install libopenblas0)."
        ) from error
    for name, (argtypes, restype) in FUNCTIONS.items():
        if not hasattr(library, name):
            MISSING.append(name)
            continue
        function = getattr(library, name)
        function.argtypes = argtypes
        function.restype = restype
    return library, path


def _missing(name: str) -> Any:
    def call(*_: Any) -> Any:
        raise OSError(f"{LIBRARY_PATH} does not export {name}: it is older than reparo.h; rebuild it (scripts/build.sh)")

    call.__name__ = name
    return call


#: Functions of reparo.h the loaded library does not export (an older build): calling one
#: raises OSError; everything else works.
MISSING: List[str] = []
lib, LIBRARY_PATH = _load()


def _function(name: str) -> Any:
    return _missing(name) if name in MISSING else getattr(lib, name)

# Module-level aliases, so callers can write `_lib.reparo_infer(...)` as in C.
reparo_version = _function("reparo_version")
reparo_last_error = _function("reparo_last_error")
reparo_status_name = _function("reparo_status_name")
reparo_system_info = _function("reparo_system_info")
reparo_model_create = _function("reparo_model_create")
reparo_model_load = _function("reparo_model_load")
reparo_model_save = _function("reparo_model_save")
reparo_model_export_onnx = _function("reparo_model_export_onnx")
reparo_model_import_onnx = _function("reparo_model_import_onnx")
reparo_model_clone = _function("reparo_model_clone")
reparo_model_describe = _function("reparo_model_describe")
reparo_spec_resolve = _function("reparo_spec_resolve")
reparo_model_shape = _function("reparo_model_shape")
reparo_model_set_threads = _function("reparo_model_set_threads")
reparo_model_threads = _function("reparo_model_threads")
reparo_model_free = _function("reparo_model_free")
reparo_infer = _function("reparo_infer")
reparo_evaluate = _function("reparo_evaluate")
reparo_trainer_create = _function("reparo_trainer_create")
reparo_trainer_step = _function("reparo_trainer_step")
reparo_trainer_free = _function("reparo_trainer_free")
reparo_trainer_save = _function("reparo_trainer_save")
reparo_trainer_load = _function("reparo_trainer_load")
reparo_trainer_fit = _function("reparo_trainer_fit")
reparo_fit_order = _function("reparo_fit_order")
reparo_prune = _function("reparo_prune")
reparo_expand = _function("reparo_expand")
reparo_collapse = _function("reparo_collapse")
reparo_dataset_load = _function("reparo_dataset_load")
reparo_dataset_create = _function("reparo_dataset_create")
reparo_dataset_info = _function("reparo_dataset_info")
reparo_dataset_data = _function("reparo_dataset_data")
reparo_dataset_free = _function("reparo_dataset_free")


def encode(text: Optional[str]) -> Optional[bytes]:
    """A Python string as a NUL-terminated UTF-8 C string (None stays NULL)."""
    if text is None:
        return None
    data = text.encode("utf-8")
    if b"\0" in data:
        raise ValueError("strings passed to Reparo must not contain NUL characters")
    return data
