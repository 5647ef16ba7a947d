"""Every code block of the README runs as written (the quick start's test command is the CI
itself, and its main-job command runs here with a smaller budget)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LIBRARY_DIR = ROOT / ".build-release" / "release"


def blocks() -> list[tuple[str, str, int]]:
    text = (ROOT / "README.md").read_text()
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        line = text[: match.start()].count("\n") + 1
        found.append((match.group(1), match.group(2), line))
    return found


def test_readme_blocks_are_all_accounted_for() -> None:
    kinds = [kind for kind, _, _ in blocks()]
    assert kinds == ["sh", "sh", "c", "python", "sh", "python", "text"], kinds


def test_quick_start_main_job(tmp_path: Path) -> None:
    quick_start = blocks()[0][1]
    assert "bash scripts/reproduce.sh" in quick_start and "bash scripts/test.sh" in quick_start
    # The main job as written (Fashion-MNIST), with a smaller budget so the suite stays fast:
    # 6,000 training images, one epoch each, one ratio and seed.
    run = subprocess.run(["bash", "scripts/reproduce.sh", "--seeds", "1", "--ratios", "0.9", "--teacher-epochs", "1",
                          "--finetune-epochs", "1", "--train-images", "6000", "--out-dir", str(tmp_path), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "expand+spkd" in run.stdout and (tmp_path / "reproduce.csv").exists()
    assert "dense teacher:" in run.stdout and "test accuracy" in run.stdout and "1x28x28" not in run.stdout
    assert len(list(tmp_path.glob("teacher-fashion-mnist-*.safetensors"))) == 1


def test_command_line_tour() -> None:
    script = blocks()[1][1]
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test accuracy" in run.stdout and "accuracy" in run.stdout


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_c_tour(tmp_path: Path) -> None:
    source = blocks()[2][1]
    (tmp_path / "tour.c").write_text(source)
    binary = tmp_path / "tour"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", str(tmp_path / "tour.c"), f"-I{ROOT / 'include'}",
                    f"-L{LIBRARY_DIR}", "-lreparo", f"-Wl,-rpath,{LIBRARY_DIR}", "-o", str(binary)], check=True)
    run = subprocess.run([str(binary)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    accuracy = float(re.search(r"collapsed pruned model: ([0-9.]+)%", run.stdout).group(1))
    assert accuracy > 80, run.stdout


def test_python_tour() -> None:
    run = subprocess.run([sys.executable, "-c", blocks()[3][1]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    accuracy = float(re.search(r"collapsed: ([0-9.]+)%", run.stdout).group(1))
    assert accuracy > 80, run.stdout


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_service_tour() -> None:
    script = blocks()[4][1]
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "p50" in run.stdout, run.stdout


def test_pytorch_tour() -> None:
    pytest.importorskip("torch")
    run = subprocess.run([sys.executable, "-c", blocks()[5][1]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
