"""Shared fixtures: the bundled digits and small model specs."""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any, Dict

import numpy as np
import pytest

# Run from a checkout without installing: make `import reparo` find the package next door.
PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_ROOT))

import reparo  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
HEADER = REPO_ROOT / "include" / "reparo.h"

# reparo_dataset_load("digits", NULL, ...) looks for data/ above the current directory and
# above the executable (not above libreparo.so), so point it at the checkout when pytest is
# started from elsewhere. From inside the checkout, the library's own lookup is exercised.
if "REPARO_DATA" not in os.environ and REPO_ROOT not in pathlib.Path.cwd().resolve().parents \
        and pathlib.Path.cwd().resolve() != REPO_ROOT and (REPO_ROOT / "data").is_dir():
    os.environ["REPARO_DATA"] = str(REPO_ROOT / "data")

#: conv 16 → BN → ReLU → maxpool → conv 32 → BN → ReLU → global avgpool → flatten → linear 10.
DIGITS_SPEC: Dict[str, Any] = {
    "input": [1, 8, 8],
    "classes": 10,
    "layers": [
        {"type": "conv", "out": 16, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2},
        {"type": "conv", "out": 32, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "avgpool"},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
    ],
}


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual − expected| / max(|expected|, tiny): error relative to the logits' scale."""
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)))) / scale


@pytest.fixture(scope="session")
def digits_train() -> reparo.Dataset:
    return reparo.Dataset.load("digits", split="train")


@pytest.fixture(scope="session")
def digits_test() -> reparo.Dataset:
    return reparo.Dataset.load("digits", split="test")


@pytest.fixture
def model() -> reparo.Model:
    """A fresh, untrained digits CNN, closed after the test."""
    with reparo.Model.create(DIGITS_SPEC, seed=7) as created:
        yield created


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
