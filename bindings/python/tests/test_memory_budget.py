"""A batch or model too large for the memory budget is an OUT_OF_MEMORY error, not an
OOM kill: every engine buffer counts against REPARO_MEMORY_BUDGET_MB (default 80% of RAM)."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, "bindings/python")
    import numpy as np
    import reparo
    model = reparo.Model.create({"preset": "vgg16", "width": 0.25}, seed=0)
    small = model.infer(np.zeros((2, 3, 32, 32), np.float32))
    try:
        model.infer(np.zeros((2048, 3, 32, 32), np.float32))
    except reparo.ReparoError as error:
        print("status", error.status, error.message)
    again = model.infer(np.zeros((2, 3, 32, 32), np.float32))
    print("unchanged", bool((small == again).all()))
""")


def test_budget_turns_large_batches_into_errors() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"REPARO_MEMORY_BUDGET_MB": "256", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status 6" in run.stdout and "memory budget" in run.stdout, run.stdout
    assert "unchanged True" in run.stdout
