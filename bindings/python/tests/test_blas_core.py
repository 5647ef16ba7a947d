"""The OpenBLAS core fix (README, "CPU and BLAS") on this machine, each case in a fresh process:
the core is chosen once per process, before Reparo's first BLAS call, so a test process that
already ran Reparo cannot show it.

A misdetecting OpenBLAS (Debian's 0.3.21 on a CPU newer than itself runs `Prescott`) is
simulated: the child loads libopenblas first, makes it choose Prescott through its own
mechanism (OPENBLAS_CORETYPE, gotoblas_dynamic_quit/init), unsets the variable, and only then
loads libreparo. The expected core is written here from /proc/cpuinfo's flags by OpenBLAS's
names, not asked from Reparo; the running core is read from OpenBLAS directly.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any, Dict, Optional

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
PACKAGE_ROOT = TESTS.parent

CHILD = r"""
import ctypes, json, os, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
simulate = sys.argv[3] == "prescott"
import numpy as np

blas = ctypes.CDLL("libopenblas.so.0", mode=ctypes.RTLD_GLOBAL)
blas.openblas_get_corename.restype = ctypes.c_char_p
libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p

def core():
    return blas.openblas_get_corename().decode()

def sgemm_gflops(n=1024):
    # OpenBLAS on one thread (Reparo sets the same), best of 3 after a warm-up.
    blas.openblas_set_num_threads(1)
    a, b = np.ones((n, n), np.float32), np.ones((n, n), np.float32)
    c = np.empty((n, n), np.float32)
    p = ctypes.POINTER(ctypes.c_float)
    args = (101, 111, 111, n, n, n, ctypes.c_float(1), a.ctypes.data_as(p), n, b.ctypes.data_as(p), n,
            ctypes.c_float(0), c.ctypes.data_as(p), n)
    blas.cblas_sgemm(*args)
    best = min(_timed(blas.cblas_sgemm, args) for _ in range(3))
    assert c[0, 0] == n and c[-1, -1] == n
    return round(2 * n ** 3 / best / 1e9, 1)

def _timed(function, args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start

result = {"at_load": core()}
if simulate:
    os.environ["OPENBLAS_CORETYPE"] = "Prescott"  # putenv: OpenBLAS's getenv sees it
    blas.gotoblas_dynamic_quit()
    blas.gotoblas_dynamic_init()
    del os.environ["OPENBLAS_CORETYPE"]
    result["simulated"] = core()
    result["gflops_before"] = sgemm_gflops()

import reparo
from test_safetensors import numpy_forward
from reparo import torch_interop

result["info"] = reparo.system_info()
result["core_after"] = core()
result["variable_after"] = libc.getenv(b"OPENBLAS_CORETYPE")
result["variable_after"] = result["variable_after"].decode() if result["variable_after"] is not None else None
if simulate:
    result["gflops_after"] = sgemm_gflops()

# A conv of 192 filters over 16 channels (a 192 x 144 weight matrix): beyond Reparo's narrow
# kernels (m <= 160 or m*k <= 16384), so it runs on OpenBLAS's sgemm with the new core.
spec = {"input": [3, 12, 12], "classes": 10, "layers": [
    {"type": "conv", "out": 16, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "conv", "out": 192, "kernel": 3, "padding": 1, "bias": True}, {"type": "relu"},
    {"type": "avgpool"}, {"type": "flatten"}, {"type": "linear", "out": 10}]}
rng = np.random.default_rng(5)
images = rng.standard_normal((8, 3, 12, 12)).astype(np.float32)
path = sys.argv[4]
with reparo.Model.create(spec, seed=3) as model:
    logits = model.infer(images)
    model.save(path)
_, tensors = torch_interop.read_file(path)
expected = numpy_forward(spec, tensors, images)
result["logit_error"] = float(np.max(np.abs(logits - expected)) / np.max(np.abs(expected)))
print(json.dumps(result))
"""


def cpu_flags() -> set:
    text = pathlib.Path("/proc/cpuinfo").read_text()
    line = next(line for line in text.splitlines() if line.startswith("flags"))
    return set(line.split(":", 1)[1].split())


def expected_best_core() -> Optional[str]:
    """OpenBLAS's core for this CPU's best instruction level (README: SkylakeX for AVX-512
    F/BW/DQ/VL, Zen or Haswell for AVX2+FMA by vendor, Sandybridge for AVX)."""
    flags = cpu_flags()
    amd = "AuthenticAMD" in pathlib.Path("/proc/cpuinfo").read_text()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Zen" if amd else "Haswell"
    return "Sandybridge" if "avx" in flags else None


def openblas_is_dynamic() -> bool:
    import ctypes

    try:
        blas = ctypes.CDLL("libopenblas.so.0")
    except OSError:
        return False
    return hasattr(blas, "gotoblas_dynamic_init") and hasattr(blas, "openblas_get_corename")


pytestmark = [
    pytest.mark.skipif(sys.platform != "linux" or not pathlib.Path("/proc/cpuinfo").is_file(), reason="Linux only"),
    pytest.mark.skipif(not openblas_is_dynamic(), reason="needs a DYNAMIC_ARCH libopenblas.so.0"),
]


def run_child(tmp_path, mode: str, **variables: str) -> Dict[str, Any]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "REPARO_BLAS_CORE", "OPENBLAS_VERBOSE")}
    env.update(variables)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(PACKAGE_ROOT), str(TESTS), mode, str(tmp_path / "model.safetensors")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", f"printed on stderr: {done.stderr[-1000:]}"  # nothing printed by default
    return json.loads(done.stdout.strip().splitlines()[-1])


# Tolerance 1e-4 of the largest logit: float32 sums of at most 144 terms against float64
# (error ~1e-6); a core computing garbage, or a wrong GEMM, is off by order 1.
TOLERANCE = 1e-4


def test_misdetected_generic_core_is_fixed(tmp_path) -> None:
    best = expected_best_core()
    if best is None:
        pytest.skip("this CPU has no AVX: nothing to fix")
    result = run_child(tmp_path, "prescott")
    assert result["simulated"] == "Prescott"
    blas = result["info"]["blas"]
    assert blas["detected_core"] == "Prescott"
    assert blas["chooser"] == "reparo"
    assert blas["core"] == best == result["core_after"]
    assert "Prescott" in blas["reason"]
    assert result["variable_after"] is None  # the environment is as it was
    assert result["info"]["environment"]["OPENBLAS_CORETYPE"] is None
    assert result["logit_error"] < TOLERANCE
    # A sanity print, not an assertion (2 shared cores: timings are noisy).
    print(f"\nsgemm 1024^3, 1 thread: Prescott {result['gflops_before']} GFLOP/s, "
          f"{best} {result['gflops_after']} GFLOP/s")


def test_user_coretype_is_kept(tmp_path) -> None:
    result = run_child(tmp_path, "plain", OPENBLAS_CORETYPE="Haswell")
    assert result["at_load"] == "Haswell"
    blas = result["info"]["blas"]
    assert (blas["core"], blas["detected_core"], blas["chooser"]) == ("Haswell", "Haswell", "user")
    assert result["core_after"] == "Haswell"
    assert result["variable_after"] == "Haswell"
    assert result["info"]["environment"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert result["logit_error"] < TOLERANCE


def test_keep_variable_leaves_the_simulated_generic_core(tmp_path) -> None:
    result = run_child(tmp_path, "prescott", REPARO_BLAS_CORE="keep")
    blas = result["info"]["blas"]
    assert (blas["core"], blas["detected_core"], blas["chooser"]) == ("Prescott", "Prescott", "openblas")
    assert result["core_after"] == "Prescott"
    assert "REPARO_BLAS_CORE=keep" in blas["reason"]
    assert result["logit_error"] < TOLERANCE


def test_forced_core(tmp_path) -> None:
    if expected_best_core() not in ("SkylakeX", "Zen", "Haswell"):
        pytest.skip("needs AVX2")
    result = run_child(tmp_path, "plain", REPARO_BLAS_CORE="haswell", OPENBLAS_CORETYPE="Prescott")
    blas = result["info"]["blas"]
    assert (blas["core"], blas["detected_core"], blas["chooser"]) == ("Haswell", "Prescott", "forced")
    assert result["core_after"] == "Haswell"
    assert result["variable_after"] == "Prescott"  # the user's variable is restored
    assert result["logit_error"] < TOLERANCE


def test_default_core_is_kept(tmp_path) -> None:
    result = run_child(tmp_path, "plain")
    blas = result["info"]["blas"]
    assert blas["core"] == blas["detected_core"] == result["at_load"] == result["core_after"]
    assert blas["chooser"] == "openblas"
    if expected_best_core() == "SkylakeX" and "avx512_bf16" in cpu_flags() and "AMD EPYC" in result["info"]["cpu"]["model"]:
        assert blas["core"] == "Cooperlake"  # this project's Zen 4 with OpenBLAS 0.3.21
    info = result["info"]
    levels = {"SkylakeX": "avx512", "Zen": "avx2", "Haswell": "avx2", "Sandybridge": "avx", None: "sse"}
    assert info["cpu"]["level"] == levels[expected_best_core()]
    assert info["blas"]["threads"] == 1
    assert info["threads"]["usable_cpus"] >= 1
    assert result["variable_after"] is None
    assert result["logit_error"] < TOLERANCE


def test_system_info_in_process() -> None:
    import reparo

    info = reparo.system_info()
    assert set(info) == {"version", "cpu", "blas", "kernels", "calibration", "threads", "environment"}
    assert info["version"] == reparo.library_version()
    flags = cpu_flags()
    for feature in info["cpu"]["features"]:
        assert (feature if feature != "sse3" else "pni") in flags
    assert info["blas"]["config"].startswith("OpenBLAS")
    assert info["blas"]["chooser"] in ("openblas", "user", "reparo", "forced")
