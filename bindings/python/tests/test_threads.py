"""Smoke test of the thread-safety promise: many threads may infer on one model at once."""

from __future__ import annotations

import threading

import numpy as np

import reparo


def test_four_threads_infer_identical_logits(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    reference = model.infer(images)
    results: list = []
    errors: list = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(25):  # ctypes drops the GIL, so these calls really overlap
                results.append(model.infer(images))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 100
    assert all(np.array_equal(result, reference) for result in results)


def test_threads_share_a_model_with_different_batch_sizes(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((33, 1, 8, 8)).astype(np.float32)
    references = {n: model.infer(images[:n]) for n in (1, 7, 33)}
    mismatches: list = []

    def worker(n: int) -> None:
        for _ in range(20):
            if not np.array_equal(model.infer(images[:n]), references[n]):
                mismatches.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 7, 33, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not mismatches


def test_logits_do_not_depend_on_the_thread_setting(rng) -> None:
    """A trainer's `threads` option is process-wide; inference results must not change with
    it (the engine cuts its GEMMs into a number of blocks fixed per machine, because OpenBLAS
    may round a block differently from the whole). Found by reliability/threads.c: logits of
    an expanded model differed while another thread created trainers with threads 1 and 2."""
    dense = reparo.Model.create({"preset": "resnet20", "width": 0.25}, seed=7)
    expanded = dense.prune(ratio=0.5)
    expanded.expand(rate=4, seed=1)
    images = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    scratch = reparo.Model.create({"preset": "resnet20", "width": 0.125, "classes": 10}, seed=3)
    logits = {}
    for threads in (1, 2, 1, 2):
        with reparo.Trainer(scratch, lr=0.01, threads=threads):
            logits.setdefault(threads, []).append((expanded.infer(images[:1]), expanded.infer(images)))
    reference = logits[2][0]
    for runs in logits.values():
        for single, batch in runs:
            assert np.array_equal(single, reference[0])
            assert np.array_equal(batch, reference[1])


def test_a_forked_child_can_still_infer(rng) -> None:
    """The engine's worker threads are not copied into a child forked after they started
    (Python multiprocessing's default start method on Linux): the child must still compute,
    with the same logits, instead of waiting forever for helpers it does not have."""
    import os
    import time

    model = reparo.Model.create({"preset": "resnet20", "width": 0.5}, seed=5)
    images = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    reference = model.infer(images)  # starts the worker threads in this process
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            status = 0 if np.array_equal(model.infer(images), reference) else 2
        finally:
            os._exit(status)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child did not finish inferring within 120 s")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
