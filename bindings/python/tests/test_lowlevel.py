"""The ctypes layer matches reparo.h: every function declared, the struct laid out as in C."""

from __future__ import annotations

import ctypes
import pathlib
import re
import tomllib

import pytest

import reparo
from reparo import _lib

from conftest import HEADER


def header_functions() -> set:
    """Names of the functions declared in reparo.h (comments stripped first, so prose that
    mentions `reparo_last_error()` does not count)."""
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return set(re.findall(r"\b(reparo_[a-z_]+)\s*\(", text))


@pytest.mark.skipif(not HEADER.is_file(), reason="reparo.h not found (not running from a checkout)")
def test_every_header_function_is_declared_once() -> None:
    declared = header_functions()
    assert len(declared) >= 20  # the parse found the API, not nothing
    assert declared == set(_lib.FUNCTIONS), (
        f"missing in _lib.FUNCTIONS: {sorted(declared - set(_lib.FUNCTIONS))}; "
        f"not in reparo.h: {sorted(set(_lib.FUNCTIONS) - declared)}"
    )
    for name in declared:
        function = getattr(_lib, name)  # the module-level alias
        if name in _lib.MISSING:
            continue
        assert function.argtypes == _lib.FUNCTIONS[name][0], name
        assert function.restype == _lib.FUNCTIONS[name][1], name


def test_library_exports_every_declared_function() -> None:
    assert not _lib.MISSING, f"{_lib.LIBRARY_PATH} lags reparo.h: it does not export {_lib.MISSING}"


def test_step_result_has_the_c_layout() -> None:
    # typedef struct { float loss, ce_loss, kd_loss, accuracy, learning_rate; int64_t step; }
    fields = [name for name, _ in _lib.reparo_step_result._fields_]
    assert fields == ["loss", "ce_loss", "kd_loss", "accuracy", "learning_rate", "step"]
    assert [getattr(_lib.reparo_step_result, f).offset for f in fields] == [0, 4, 8, 12, 16, 24]
    assert ctypes.sizeof(_lib.reparo_step_result) == 32
    assert ctypes.alignment(_lib.reparo_step_result) == 8


def test_version_and_status_names() -> None:
    assert reparo.library_version() == reparo.__version__
    for status in reparo.Status:
        expected = "REPARO_OK" if status == 0 else f"REPARO_ERR_{status.name}"
        assert _lib.reparo_status_name(status).decode() == expected
    assert _lib.reparo_status_name(99).decode()  # unknown codes still get a name, never NULL
    assert _lib.reparo_status_name(-1).decode()


def test_library_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("REPARO_LIBRARY", str(tmp_path / "nope.so"))
    with pytest.raises(OSError, match="REPARO_LIBRARY"):
        _lib.find_library()
    monkeypatch.setenv("REPARO_LIBRARY", str(_lib.LIBRARY_PATH))
    assert _lib.find_library() == _lib.LIBRARY_PATH.resolve()
    monkeypatch.delenv("REPARO_LIBRARY")
    assert _lib.find_library().name == _lib.LIBRARY_NAME


def test_last_error_is_per_call_and_thread_local() -> None:
    import threading

    with pytest.raises(reparo.ReparoError):
        reparo.Model.load("/nonexistent/reparo-model.safetensors")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(_lib.reparo_last_error()))
    thread.start()
    thread.join()
    assert seen == [b""]  # another thread has no error


@pytest.mark.skipif(not HEADER.is_file(), reason="reparo.h not found (not running from a checkout)")
def test_version_comes_from_the_header() -> None:
    """REPARO_VERSION_* of reparo.h is the one version: the package's, pyproject's (read from
    the package) and the library's agree with it."""
    text = HEADER.read_text()
    macros = dict(re.findall(r"^#define (REPARO_VERSION_\w+) (\S+)", text, flags=re.M))
    string = macros["REPARO_VERSION_STRING"].strip('"')
    assert string == ".".join(macros[f"REPARO_VERSION_{part}"] for part in ("MAJOR", "MINOR", "PATCH"))
    assert reparo.__version__ == string
    assert reparo.library_version() == string
    pyproject = tomllib.loads((pathlib.Path(reparo.__file__).parents[1] / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "reparo.__version__"}
