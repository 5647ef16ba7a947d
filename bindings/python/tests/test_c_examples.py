"""Runs scripts/run_c_examples.sh, so the C examples (and the header's C/C++ compile checks)
are part of the pytest suite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "run_c_examples.sh"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="scripts/run_c_examples.sh not found (not running from a checkout)")
@pytest.mark.skipif(
    shutil.which(os.environ.get("CC", "cc")) is None or shutil.which(os.environ.get("CXX", "c++")) is None,
    reason="no C/C++ compiler (cc/c++ or $CC/$CXX) on PATH",
)
def test_c_examples() -> None:
    from reparo import library_path

    env = dict(os.environ, REPARO_LIBRARY=library_path())
    run = subprocess.run(["bash", str(SCRIPT)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "C examples: all passed" in output
    assert "reloaded logits are bit-identical" in output
    # serve.c + serve_client.c: answers over the socket equal a local reparo_infer bit for bit,
    # malformed requests are rejected, and both ways of stopping the server work.
    assert output.count("serve_client: all answers matched") == 2, output[-3000:]
    assert "malformed requests: 6 of 6 rejected as expected" in output
    assert "serve: stopped (SIGTERM)" in output and "serve: stopped (the request limit was reached)" in output
    summary = re.findall(r"^(\d+) passed, (\d+) failed$", run.stdout, flags=re.M)
    assert summary and summary[-1][1] == "0" and int(summary[-1][0]) > 100, output[-3000:]
