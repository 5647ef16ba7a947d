"""The Python examples run as documented and print what they claim."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_pipeline_example(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.safetensors"
    run = subprocess.run([sys.executable, str(ROOT / "examples/python/pipeline.py"), str(output)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert output.exists()
    # Expansion and collapse are output-preserving (1e-4 absolute on logits of order 10).
    deltas = [float(value) for value in re.findall(r"max \|Δlogit\|(?: vs expanded)? = ([0-9.e+-]+)", run.stdout)]
    assert len(deltas) == 2 and max(deltas) < 1e-4, run.stdout
    accuracy = float(re.search(r"collapsed: ([0-9.]+)%", run.stdout).group(1))
    assert accuracy > 80, run.stdout


def test_bring_your_pytorch_model_example(tmp_path: Path) -> None:
    for module in ("torch", "onnx", "onnxruntime"):
        pytest.importorskip(module)
    run = subprocess.run([sys.executable, str(ROOT / "examples/python/bring_your_pytorch_model.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "dense.onnx").exists() and (tmp_path / "restored.onnx").exists()
    # Import and serving keep the logits: scaled error max |Δ| / max(1, max |logit|) ≤ 1e-4
    # (float32 rounding in another summation order is ~1e-6; see test_onnx_roundtrip.py).
    deltas = [float(value) for value in re.findall(r"max \|Δlogit\| vs \w+ = ([0-9.e+-]+)", run.stdout)]
    assert len(deltas) == 2 and max(deltas) <= 1e-4, run.stdout
    accuracies = {stage: float(value) for stage, value in
                  re.findall(r"^(PyTorch dense|imported|restored|onnxruntime):\s+([0-9.]+)%", run.stdout, flags=re.M)}
    assert len(accuracies) == 4, run.stdout
    assert accuracies["PyTorch dense"] > 80 and accuracies["restored"] > 80, run.stdout
    # The digits test split has 359 images: the same logits give the same accuracy, up to an
    # argmax tie broken by the last bit.
    assert abs(accuracies["imported"] - accuracies["PyTorch dense"]) <= 100 / 359 + 1e-9, run.stdout
    assert abs(accuracies["onnxruntime"] - accuracies["restored"]) <= 100 / 359 + 1e-9, run.stdout
