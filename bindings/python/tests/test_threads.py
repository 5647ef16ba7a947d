"""The thread-safety promise (many threads may infer on one model at once) and the owned
thread settings: a model's inference threads and a trainer's are their own."""

from __future__ import annotations

import threading

import numpy as np
import pytest

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
    """Inference results must not change with the thread count (the engine cuts its GEMMs
    into a number of blocks fixed per machine, because OpenBLAS may round a block differently
    from the whole). Found by reliability/threads.c: logits of an expanded model differed while
    another thread created trainers with threads 1 and 2 (then process-wide)."""
    dense = reparo.Model.create({"preset": "resnet20", "width": 0.25}, seed=7)
    expanded = dense.prune(ratio=0.5)
    expanded.expand(rate=4, seed=1)
    images = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    scratch = reparo.Model.create({"preset": "resnet20", "width": 0.125, "classes": 10}, seed=3)
    logits = {}
    for threads in (1, 2, 1, 2, 0):
        expanded.threads = threads
        with reparo.Trainer(scratch, lr=0.01, threads=3 - threads if threads else 1):
            logits.setdefault(threads, []).append((expanded.infer(images[:1]), expanded.infer(images)))
    reference = logits[2][0]
    for runs in logits.values():
        for single, batch in runs:
            assert np.array_equal(single, reference[0])
            assert np.array_equal(batch, reference[1])


def test_a_trainer_does_not_change_another_models_threads(model: reparo.Model) -> None:
    """Threads belong to their owner: creating (and stepping) trainers with other thread
    counts leaves a model's inference setting as it was (it used to be process-wide)."""
    assert model.threads == 0  # the default: every core the process may use
    model.threads = 1
    student = reparo.Model.create({"preset": "resnet20", "width": 0.125, "classes": 10}, seed=3)
    images = np.zeros((2, 3, 32, 32), dtype=np.float32)
    for threads in (2, 0, 3):
        with reparo.Trainer(student, lr=0.01, threads=threads) as trainer:
            trainer.step(images, np.array([0, 1], dtype=np.int32))
        assert model.threads == 1
        assert student.threads == 0
    assert model.clone().threads == 1


def test_model_threads_are_validated(model: reparo.Model) -> None:
    for bad in (-1, 257, 2**31, -(2**40)):
        with pytest.raises((reparo.ReparoError, ValueError)):
            model.threads = bad
    assert model.threads == 0
    model.threads = 256
    assert model.threads == 256


def test_two_models_infer_concurrently_at_different_thread_counts(rng) -> None:
    """Two models in one process infer at once, one on 1 thread and one on 2 (threads started
    together, many iterations): every result equals the serial run of the same model bit for
    bit, whatever the other model is doing."""
    models = [
        reparo.Model.create({"preset": "resnet20", "width": 0.5}, seed=1),
        reparo.Model.create({"preset": "vgg16", "width": 0.25}, seed=2),
    ]
    models[0].threads = 1
    models[1].threads = 2
    inputs = [rng.standard_normal((n, 3, 32, 32)).astype(np.float32) for n in (1, 8)]
    references = [[m.infer(x) for x in inputs] for m in models]
    mismatches: list = []
    errors: list = []
    barrier = threading.Barrier(len(models))

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for iteration in range(25):  # ctypes drops the GIL: the two models really overlap
                for x, expected in zip(inputs, references[index]):
                    if not np.array_equal(models[index].infer(x), expected):
                        mismatches.append((index, len(x), iteration))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(models))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert not mismatches, mismatches


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
