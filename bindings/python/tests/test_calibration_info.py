"""The kernel calibration's file, as `reparo.system_info()` reports it.

Each case runs in a subprocess (calibration state is per process) with its own
REPARO_CACHE_DIR: after a model's first inference and training step (the first GEMMs, which
measure the narrow-kernel thresholds), the report names a file inside that directory, the file
exists and is JSON holding exactly the reported number of choices; with REPARO_CALIBRATION=off
nothing is measured or written. The oracle is the file on disk, read here independently.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from conftest import PACKAGE_ROOT

SCRIPT = r"""
import json
import numpy as np
import reparo
spec = {"input": [3, 12, 12], "classes": 4, "layers": [
    {"type": "conv", "out": 24, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "relu"},
    {"type": "conv", "out": 40, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "avgpool", "kernel": 12}, {"type": "flatten"}, {"type": "linear", "out": 4}]}
model = reparo.Model.create(spec, seed=1)
images = np.random.default_rng(0).standard_normal((8, 3, 12, 12)).astype(np.float32)
model.infer(images)
with reparo.Trainer(model, lr=0.01) as trainer:
    trainer.step(images, np.arange(8, dtype=np.int32) % 4)
print(json.dumps(reparo.system_info()["calibration"]))
"""


def run(cache: pathlib.Path, **variables: str) -> dict:
    env = dict(os.environ, REPARO_CACHE_DIR=str(cache), **variables,
               PYTHONPATH=str(PACKAGE_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("REPARO_CALIBRATION", None) if "REPARO_CALIBRATION" not in variables else None
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_report_names_the_file_and_its_choices(tmp_path: pathlib.Path) -> None:
    report = run(tmp_path)
    assert report["enabled"] is True
    file = pathlib.Path(report["file"])
    assert file.parent == tmp_path and file.name.startswith("calibration-") and file.suffix == ".json"
    if report["persisted_choices"] == 0:
        # No kernel level with a choice to make (a CPU without AVX2, a debug build): no file.
        assert not file.exists()
        return
    stored = json.loads(file.read_text())
    assert len(stored["choices"]) == report["persisted_choices"]
    # A second process reads the same file and adds nothing for the same model.
    again = run(tmp_path)
    assert again["file"] == report["file"] and again["persisted_choices"] == report["persisted_choices"]


def test_calibration_off_measures_and_writes_nothing(tmp_path: pathlib.Path) -> None:
    report = run(tmp_path, REPARO_CALIBRATION="off")
    assert report["enabled"] is False and report["persisted_choices"] == 0
    assert list(tmp_path.iterdir()) == []
