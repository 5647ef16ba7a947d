"""The Python examples run as documented and print what they claim."""
import re
import subprocess
import sys
from pathlib import Path

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
