"""Issue #5 regressions through the C API: hostile checkpoints and weights files cost an error
code, never a crash or an allocation their size does not justify; a freed handle stays invalid
however many objects are created after it. The files are fuzz/corpus/*/regression-*."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status, _lib

from conftest import REPO_ROOT

CORPUS = REPO_ROOT / "fuzz" / "corpus"
STEP_OVERFLOW = CORPUS / "checkpoint" / "regression-trainer-step-overflow.safetensors"
LOAD_AMPLIFICATION = CORPUS / "load" / "regression-load-memory-amplification.safetensors"
WORKSPACE_AMPLIFICATION = CORPUS / "load" / "regression-infer-workspace-amplification.safetensors"

TINY_SPEC = {"input": [1, 2, 2], "classes": 2, "layers": [{"type": "flatten"}, {"type": "linear", "out": 2}]}


def run_python(script: str, **environment: str) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh interpreter (a crash or an OOM kill there fails the test, not the suite)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environment}
    for key in ("REPARO_LIBRARY", "REPARO_DATA"):
        if key in os.environ:
            env[key] = os.environ[key]
    prelude = f"import sys\nsys.path.insert(0, {str(REPO_ROOT / 'bindings' / 'python')!r})\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def spec_of(path) -> str:
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length])["__metadata__"]["spec"]


def test_step_overflow_checkpoint_is_format_and_training_goes_on() -> None:
    # Before the fix the checkpoint loaded and the next step killed the process (SIGILL on
    # `step += 1`), hence a separate interpreter.
    run = run_python(f"""
        import numpy as np, reparo
        student = reparo.Model.create({spec_of(STEP_OVERFLOW)!r}, seed=1)
        trainer = reparo.Trainer(student)
        try:
            trainer.load({str(STEP_OVERFLOW)!r})
            print("loaded")
        except reparo.ReparoError as error:
            print("status", int(error.status), error.message)
        result = trainer.step(np.zeros((1,) + student.input_shape, np.float32), np.zeros(1, np.int32))
        print("step", result.step)
    """)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}{run.stderr}"
    assert f"status {int(Status.FORMAT)}" in run.stdout and '"step"' in run.stdout, run.stdout
    assert "step 1" in run.stdout, run.stdout


def test_load_checks_tensors_before_allocating_for_the_spec() -> None:
    # 304 bytes whose spec asks for two 231 M-float convs. Before the fix the loader allocated
    # them (3.5 GiB with gradients) before seeing the file holds no tensor: under a 256 MiB
    # budget that was OUT_OF_MEMORY; now it is FORMAT, with nothing allocated.
    assert LOAD_AMPLIFICATION.stat().st_size == 304
    run = run_python(f"""
        import reparo
        try:
            reparo.Model.load({str(LOAD_AMPLIFICATION)!r})
            print("loaded")
        except reparo.ReparoError as error:
            print("status", int(error.status), error.message)
    """, REPARO_MEMORY_BUDGET_MB="256")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"status {int(Status.FORMAT)}" in run.stdout, run.stdout


def not_same_padding(path, tmp_path):
    """The reproducer with its 31×31 convs padded by 14 instead of 15 (same byte length): not
    "same" convs any more, so every machine runs them with im2col, whose workspace is the
    hazard. (Same convs run without im2col where the AVX-512 kernels are: see below.)"""
    data = path.read_bytes()
    assert data.count(b'\\"padding\\":15') == 2
    variant = tmp_path / "padding-14.safetensors"
    variant.write_bytes(data.replace(b'\\"padding\\":15', b'\\"padding\\":14'))
    return variant


def test_load_refuses_a_model_whose_one_image_workspace_is_huge(tmp_path) -> None:
    # 8.5 KB, 1,925 parameters, but one image needs 2 × 250 M im2col floats. Before the fix the
    # reproducer loaded, and the first reparo_infer allocated 2.2 GB.
    with pytest.raises(ReparoError) as caught:
        reparo.Model.load(not_same_padding(WORKSPACE_AMPLIFICATION, tmp_path))
    assert caught.value.status == Status.FORMAT
    assert "workspace" in caught.value.message and "one image" in caught.value.message, caught.value.message


def test_the_reproducer_itself_is_refused_or_runs_within_the_budget() -> None:
    # With same padding the AVX-512 path needs two padded 570×570 planes instead of the im2col
    # matrices: the model may load and infer, but never beyond a budget far below 2.2 GB.
    run = run_python(f"""
        import numpy as np, reparo
        try:
            model = reparo.Model.load({str(WORKSPACE_AMPLIFICATION)!r})
            logits = model.infer(np.ones((1, 1, 540, 540), np.float32))
            print("ran", bool(np.isfinite(logits).all()))
        except reparo.ReparoError as error:
            print("status", int(error.status), error.message)
    """, REPARO_MEMORY_BUDGET_MB="600")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ran True" in run.stdout or f"status {int(Status.FORMAT)}" in run.stdout, run.stdout


def test_create_refuses_the_same_workspace_as_invalid_argument(tmp_path) -> None:
    spec = json.loads(spec_of(not_same_padding(WORKSPACE_AMPLIFICATION, tmp_path)))
    with pytest.raises(ReparoError) as caught:
        reparo.Model.create(spec)
    assert caught.value.status == Status.INVALID_ARGUMENT
    assert "workspace" in caught.value.message
    spec["input"] = [1, 64, 64]  # the same layers on a smaller image are fine
    with reparo.Model.create(spec) as model:
        assert np.isfinite(model.infer(np.ones((1, 1, 64, 64), np.float32))).all()


def test_freed_handle_stays_invalid_when_its_address_is_reused() -> None:
    # Handles used to be object addresses: free a model, create another, and the allocator often
    # placed it at the freed address, which made the stale handle valid again (for the new model).
    freed, kept = [], []
    for seed in range(100):
        old = reparo.Model.create(TINY_SPEC, seed=seed)
        freed.append(old.handle)
        old.close()
        kept.append(reparo.Model.create(TINY_SPEC, seed=seed))
    live = {model.handle for model in kept}
    assert not live & set(freed), "a new model got the handle of a freed one"
    classes = ctypes.c_int32(-1)
    for stale in freed:
        status = _lib.reparo_model_shape(stale, None, None, None, ctypes.byref(classes))
        assert status == Status.INVALID_ARGUMENT
        assert b"not a live handle" in _lib.reparo_last_error()
        _lib.reparo_model_free(stale)  # a second free is a no-op
    assert classes.value == -1  # nothing was written through a stale handle
    for model in kept:  # and the live ones are untouched by all that
        assert model.classes == 2
        model.close()


def test_handles_are_not_addresses_of_anything() -> None:
    # Tokens are odd, so no handle is an aligned pointer a caller could confuse with an object.
    with reparo.Model.create(TINY_SPEC) as a, reparo.Model.create(TINY_SPEC) as b:
        assert a.handle % 2 == 1 and b.handle % 2 == 1 and a.handle != b.handle
