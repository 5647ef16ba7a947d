"""Reparo: restore the accuracy of pruned CNNs by linear over-parameterization.

Python bindings over the C API (include/reparo.h) in two layers, as llama-cpp-python does:
:mod:`reparo._lib` declares every C function with ctypes; this package wraps them in classes
with numpy in and out and exceptions that carry the status code and message.

Example::

    import reparo
    train = reparo.Dataset.load("digits", split="train")
    with reparo.Model.create(spec) as dense, reparo.Trainer(dense, lr=0.05) as trainer:
        trainer.fit(train.images, train.labels, epochs=5, batch_size=32)
"""

from __future__ import annotations

import ctypes
import json

from . import _lib
from .dataset import Dataset, load_dataset
from .errors import ReparoError, Status, check
from .model import MAX_BATCH, Model
from .trainer import EpochStats, StepResult, Trainer, fit_order

__all__ = [
    "Dataset",
    "EpochStats",
    "MAX_BATCH",
    "Model",
    "ReparoError",
    "Status",
    "StepResult",
    "Trainer",
    "__version__",
    "fit_order",
    "library_path",
    "library_version",
    "load_dataset",
    "system_info",
]

#: The package version: REPARO_VERSION_STRING of include/reparo.h, the one place it is decided
#: (a wheel does not carry the header, so it is written here too; tests/test_lowlevel.py holds
#: the two equal, and pyproject.toml reads this line).
__version__ = "0.1.0"


def library_version() -> str:
    """Version string of the loaded C library (``reparo_version``)."""
    return _lib.reparo_version().decode("utf-8")


def library_path() -> str:
    """Path of the loaded shared library."""
    return str(_lib.LIBRARY_PATH)


def system_info() -> dict:
    """What Reparo runs on, as the engine reports it (``reparo_system_info``): a new dict with
    ``"cpu"`` (vendor, model, features, level), ``"blas"`` (OpenBLAS config, the running
    ``"core"``, the ``"detected_core"`` OpenBLAS had chosen, the ``"chooser"``: ``"openblas"``,
    ``"user"`` (OPENBLAS_CORETYPE), ``"reparo"`` (fixed) or ``"forced"`` (REPARO_BLAS_CORE), and
    the ``"reason"``), ``"kernels"``, ``"calibration"`` (the file of measured kernel choices),
    ``"threads"`` and the ``"environment"`` variables. The first call (or Reparo's first BLAS
    work) fixes a generic OpenBLAS core; see README, "CPU and BLAS".
    """
    length = ctypes.c_size_t()
    check(_lib.reparo_system_info(None, 0, ctypes.byref(length)))
    buffer = ctypes.create_string_buffer(length.value + 1)
    check(_lib.reparo_system_info(buffer, len(buffer), ctypes.byref(length)))
    return json.loads(buffer.value.decode("utf-8"))
