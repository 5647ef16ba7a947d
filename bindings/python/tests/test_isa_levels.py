"""Each kernel level (REPARO_ISA=avx512, avx2, portable) computes the same model.

A conv net whose layers take every vector-kernel path — a 20×20 "same" 3×3 conv (padded-width
implicit GEMM: narrow_sgemm_gathered, pad/crop planes), 2×2 max pooling, 10×10 and 5×5 convs
(stride-1 im2col/col2im rows, narrow GEMMs op(A)·B, Wᵀ·dY and dY·colsᵀ) — runs in one
subprocess per level (the level is read once per process): inference, three SGD steps with
BatchNorm in training mode, inference again, and the trained weights saved.
`reparo.system_info()["kernels"]["isa"]` confirms the level in use; a level above the CPU's is
clamped with a warning, which is checked too.

Oracles and tolerances (measured values are printed; run with -s):
- the first inference against PyTorch in float64 on the same weights: 1e-4 of the largest
  logit (float32 convs of ≤ 576-term sums: measured ≤ 1e-6);
- every level against the first one (the highest the CPU has): logits before and after
  training, the step losses and every trained tensor within 1e-4 relative to the tensor's
  scale. The levels sum in different orders (OpenBLAS, 16-lane or 8-lane partial sums), so
  they differ in the last bits, and three SGD steps grow that to ≈ 1e-6; a wrong tile edge,
  mask or tap is off by whole terms (≈ 1e-2 and more).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any, Dict

import numpy as np
import pytest

from conftest import PACKAGE_ROOT, relative_error

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

TOLERANCE = 1e-4
LEVELS = ["avx512", "avx2", "portable"]

SPEC: Dict[str, Any] = {
    "input": [3, 20, 20],
    "classes": 10,
    "layers": [
        {"type": "conv", "out": 24, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2},
        {"type": "conv", "out": 40, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2},
        {"type": "conv", "out": 64, "kernel": 3, "padding": 1},
        {"type": "relu"},
        {"type": "avgpool"},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
    ],
}

#: Runs in the subprocess: argv = spec JSON, output directory.
SCRIPT = r"""
import json, pathlib, sys
import numpy as np
import reparo

spec, out = json.loads(sys.argv[1]), pathlib.Path(sys.argv[2])
rng = np.random.default_rng(19)
images = rng.standard_normal((16, 3, 20, 20)).astype(np.float32)
labels = rng.integers(0, 10, 16).astype(np.int32)
model = reparo.Model.create(spec, seed=5)
model.save(out / "initial.safetensors")
before = model.infer(images)
trainer = reparo.Trainer(model, lr=0.05, momentum=0.9)
losses = [trainer.step(images, labels).loss for _ in range(3)]
after = model.infer(images)
model.save(out / "trained.safetensors")
np.savez(out / "results.npz", images=images, before=before, after=after, losses=np.array(losses))
print(json.dumps({"level": reparo.system_info()["kernels"]["isa"]}))
"""


def cpu_flags() -> set:
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def supported(level: str, flags: set) -> bool:
    if level == "avx512":
        return "avx512f" in flags
    if level == "avx2":
        return {"avx2", "fma"} <= flags
    return True


def run_level(level: str, directory: pathlib.Path) -> Dict[str, Any]:
    directory.mkdir()
    env = dict(os.environ, REPARO_ISA=level, REPARO_CACHE_DIR=str(directory / "cache"),
               PYTHONPATH=str(PACKAGE_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(SPEC), str(directory)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result: Dict[str, Any] = dict(np.load(directory / "results.npz"))
    result["level"] = json.loads(run.stdout.strip().splitlines()[-1])["level"]
    result["stderr"] = run.stderr
    result["directory"] = directory
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, Any]]:
    base = tmp_path_factory.mktemp("isa")
    return {level: run_level(level, base / level) for level in LEVELS}


def test_level_in_use(runs: Dict[str, Dict[str, Any]]) -> None:
    flags = cpu_flags()
    highest = next(level for level in LEVELS if supported(level, flags))
    for level, run in runs.items():
        expected = level if supported(level, flags) else highest
        print(f"REPARO_ISA={level}: level {run['level']}")
        assert run["level"] == expected, level
        clamped = "not supported by this CPU" in run["stderr"]
        assert clamped == (expected != level), run["stderr"]


def test_inference_matches_torch(runs: Dict[str, Dict[str, Any]]) -> None:
    from reparo import torch_interop

    for level, run in runs.items():
        net = torch_interop.load_torch_model(run["directory"] / "initial.safetensors").double()
        with torch.no_grad():
            reference = net(torch.from_numpy(run["images"]).double()).numpy()
        error = relative_error(run["before"], reference)
        print(f"{level}: logits vs torch float64 {error:.2e}")
        assert error <= TOLERANCE, level


def test_levels_agree(runs: Dict[str, Dict[str, Any]]) -> None:
    from reparo import torch_interop

    first = runs[LEVELS[0]]
    trained = torch_interop.read_file(first["directory"] / "trained.safetensors")[1]
    for level in LEVELS[1:]:
        run = runs[level]
        errors = {
            "logits before": relative_error(run["before"], first["before"]),
            "logits after": relative_error(run["after"], first["after"]),
            "losses": relative_error(run["losses"], first["losses"]),
        }
        tensors = torch_interop.read_file(run["directory"] / "trained.safetensors")[1]
        assert tensors.keys() == trained.keys()
        errors["weights"] = max(relative_error(tensors[name], trained[name]) for name in trained)
        print(f"{level} vs {LEVELS[0]}: " + ", ".join(f"{name} {value:.2e}" for name, value in errors.items()))
        for name, value in errors.items():
            assert value <= TOLERANCE, f"{level}: {name} {value}"
        # The training moved the model (so agreeing after it says something).
        assert relative_error(run["after"], run["before"]) > 1e-3


def test_unknown_value_means_auto(tmp_path: pathlib.Path) -> None:
    flags = cpu_flags()
    highest = next(level for level in LEVELS if supported(level, flags))
    env = dict(os.environ, REPARO_ISA="sse9", REPARO_CACHE_DIR=str(tmp_path),
               PYTHONPATH=str(PACKAGE_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = "import reparo; print(reparo.system_info()['kernels']['isa'])"
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == highest
    warnings = [line for line in run.stderr.splitlines() if "REPARO_ISA" in line]
    assert warnings == ["reparo: REPARO_ISA=sse9 is not avx512, avx2, portable or auto; using auto"], run.stderr
