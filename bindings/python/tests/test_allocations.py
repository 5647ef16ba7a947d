"""The release library's warmed-up training steps and inference calls allocate nothing: runs
reliability/allocations.c, linked with the benchmark's malloc counter, which interposes malloc
for the whole process (every thread, every library) and counts the calls made by steps and
inferences after warm-up."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

SOURCE = REPO_ROOT / "reliability" / "allocations.c"
COUNTER = REPO_ROOT / "bench" / "Sources" / "MallocCounter"
COMPILER = os.environ.get("CC", "cc")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="interposes glibc's malloc")
@pytest.mark.skipif(not SOURCE.is_file(), reason="reliability/allocations.c not found (not running from a checkout)")
@pytest.mark.skipif(shutil.which(COMPILER) is None, reason="no C compiler (cc or $CC) on PATH")
def test_steps_and_inference_allocate_nothing_after_warm_up(tmp_path: pathlib.Path) -> None:
    from reparo import library_path

    library = pathlib.Path(library_path()).resolve().parent
    program = tmp_path / "allocations"
    subprocess.run([COMPILER, "-O2", "-pthread", "-I", str(REPO_ROOT / "include"), "-I", str(COUNTER / "include"),
                    str(SOURCE), str(COUNTER / "malloc_counter.c"), "-L", str(library), "-lreparo",
                    f"-Wl,-rpath,{library}", "-o", str(program)], check=True, timeout=120)
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "allocations: 0 in every workload" in output
    assert output.count(" 0 allocations in 2 calls") == 6, output
