"""The :class:`Trainer` class: SGD with optional similarity-preserving distillation."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple

import numpy as np

from . import _lib
from ._owned import OwnsHandle
from .errors import check, options_json
from .model import MAX_BATCH, Model, _float_pointer, _int32_pointer, as_images, as_labels

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["Trainer", "StepResult", "EpochStats", "fit_order"]


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One training step (``reparo_step_result``).

    ``kd_loss`` is 0 when distillation is off; ``accuracy`` is measured on the batch before
    the update; ``step`` counts from 1.
    """

    loss: float
    ce_loss: float
    kd_loss: float
    accuracy: float
    learning_rate: float
    step: int


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """Statistics of one epoch of :meth:`Trainer.fit`: sample-weighted means over its batches,
    the learning rate and global step of its last batch, and, when a validation set was
    given, eval-mode accuracy and loss on it after the epoch."""

    epoch: int
    steps: int
    samples: int
    loss: float
    ce_loss: float
    kd_loss: float
    accuracy: float
    learning_rate: float
    step: int
    seconds: float
    val_accuracy: Optional[float] = None
    val_loss: Optional[float] = None


def _step_result(result: "_lib.reparo_step_result") -> StepResult:
    return StepResult(
        loss=float(result.loss),
        ce_loss=float(result.ce_loss),
        kd_loss=float(result.kd_loss),
        accuracy=float(result.accuracy),
        learning_rate=float(result.learning_rate),
        step=int(result.step),
    )


def fit_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The order (int64 [count], a permutation of ``range(count)``) in which the library's fit
    loop visits ``count`` samples in 1-based ``epoch`` of a run seeded with ``seed``
    (``reparo_fit_order``)."""
    order = np.empty(count, dtype=np.int64)
    check(_lib.reparo_fit_order(count, seed, epoch, order.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), count))
    return order


class Trainer(OwnsHandle):
    """An SGD trainer that updates ``student`` in place.

    Args:
        student: the model to train.
        teacher: the frozen dense model for SP-KD (only read), or None.
        **options: trainer options of reparo.h (``lr``, ``momentum``, ``nesterov``,
            ``weight_decay``, ``schedule``, ``total_steps``, ``step_size``, ``gamma``,
            ``augment``, ``kd_weight`` (300 with a teacher, else 0), ``kd_layers``,
            ``clip_norm``, ``seed``, ``threads`` (this trainer's own), ``chain_mode``), serialized
            with ``json.dumps``; unknown keys are rejected by the library, naming the key.

    The trainer keeps references to both models, so they stay alive while it is open, and
    they refuse :meth:`Model.close` until the trainer is closed. A trainer is used by one
    thread at a time. Close it with :meth:`close` or a ``with`` block.

    Raises:
        ReparoError: INVALID_ARGUMENT (options, or a teacher of another input/classes), STATE.
    """

    _free_function = "reparo_trainer_free"

    def __init__(self, student: Model, teacher: Optional[Model] = None, **options: Any) -> None:
        self._handle: Optional[int] = None
        if not isinstance(student, Model):
            raise TypeError(f"student must be a reparo.Model, got {type(student).__name__}")
        if teacher is not None and not isinstance(teacher, Model):
            raise TypeError(f"teacher must be a reparo.Model or None, got {type(teacher).__name__}")
        handle = _lib.reparo_trainer_p()
        check(
            _lib.reparo_trainer_create(
                student.handle,
                teacher.handle if teacher is not None else None,
                options_json(options),
                ctypes.byref(handle),
            )
        )
        self._handle = handle.value
        self._student: Optional[Model] = student
        self._teacher: Optional[Model] = teacher
        self._options = dict(options)
        student._trainers.add(self)
        if teacher is not None:
            teacher._trainers.add(self)

    # --- lifetime ----------------------------------------------------------------------------

    @property
    def student(self) -> Model:
        """The model being trained."""
        if self._student is None:
            raise ValueError("operation on a closed Trainer")
        return self._student

    @property
    def teacher(self) -> Optional[Model]:
        """The distillation teacher, or None."""
        return self._teacher

    @property
    def options(self) -> dict:
        """The options the trainer was created with."""
        return dict(self._options)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Frees the C trainer (not its models) and releases the models. Idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _lib.reparo_trainer_free(handle)
        for model in (self.__dict__.get("_student"), self.__dict__.get("_teacher")):
            if model is not None:
                model._trainers.discard(self)
        self._student = None
        self._teacher = None

    def _require_open(self) -> int:
        if self._handle is None:
            raise ValueError("operation on a closed Trainer")
        return self._handle

    # --- training ----------------------------------------------------------------------------

    def step(self, images: Any, labels: Any) -> StepResult:
        """One SGD step on a batch.

        Args:
            images: [B, C, H, W] (1 ≤ B ≤ 65536), copied to contiguous float32 if needed.
            labels: B integers in ``[0, classes)``.

        Raises:
            ValueError: wrong shapes (checked before calling C).
            ReparoError: INVALID_ARGUMENT (labels out of range), NUMERIC (non-finite loss or
                gradient; the model is left unchanged).
        """
        handle = self._require_open()
        student = self.student
        data = as_images(images, student.input_shape)
        batch = data.shape[0]
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"a training batch must hold 1 to {MAX_BATCH} images, got {batch}")
        targets = as_labels(labels, batch)
        result = _lib.reparo_step_result()
        check(_lib.reparo_trainer_step(handle, _float_pointer(data), _int32_pointer(targets), batch, ctypes.byref(result)))
        return _step_result(result)

    def iter_fit(
        self,
        images: Any,
        labels: Any,
        epochs: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        validation: Optional[Tuple[Any, Any]] = None,
        drop_last: bool = False,
    ) -> Iterator[EpochStats]:
        """Trains epoch by epoch, yielding each epoch's :class:`EpochStats` (lazily: nothing
        runs until iterated).

        Args:
            images, labels: the training set ([N, C, H, W] and N labels).
            epochs: number of passes over the data.
            batch_size: samples per step; the last batch of an epoch is smaller unless
                ``drop_last``.
            shuffle: reshuffle every epoch, in the order of the library's own loop
                (``reparo_fit_order``): with the same seed, the same student, options and
                data, and no ``drop_last``, this trains exactly as :meth:`fit_native`.
            seed: seed of the shuffling (0 ... 2^64-1).
            validation: optional ``(images, labels)`` evaluated after each epoch.
            drop_last: skip the last incomplete batch of each epoch.
        """
        student = self.student
        data = as_images(images, student.input_shape)
        count = data.shape[0]
        targets = as_labels(labels, count)
        if count == 0:
            raise ValueError("fit needs at least one training sample")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be in 1...{MAX_BATCH}, got {batch_size}")
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must be in 0...2**64-1, got {seed}")
        if validation is not None:
            val_images = as_images(validation[0], student.input_shape, "validation images")
            val_labels = as_labels(validation[1], val_images.shape[0])
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            order = fit_order(count, seed, epoch) if shuffle else np.arange(count)
            totals = np.zeros(4)  # loss, ce, kd, correct (sample-weighted)
            samples = steps = 0
            last: Optional[StepResult] = None
            for start in range(0, count, batch_size):
                index = order[start : start + batch_size]
                if drop_last and index.shape[0] < batch_size:
                    break
                last = self.step(data[index], targets[index])
                size = index.shape[0]
                totals += size * np.array([last.loss, last.ce_loss, last.kd_loss, last.accuracy])
                samples += size
                steps += 1
            if last is None:
                raise ValueError(f"no batch to train on: {count} samples, batch_size {batch_size}, drop_last")
            val_accuracy = val_loss = None
            if validation is not None:
                val_accuracy, val_loss = student.evaluate(val_images, val_labels)
            means = totals / samples
            yield EpochStats(
                epoch=epoch,
                steps=steps,
                samples=samples,
                loss=float(means[0]),
                ce_loss=float(means[1]),
                kd_loss=float(means[2]),
                accuracy=float(means[3]),
                learning_rate=last.learning_rate,
                step=last.step,
                seconds=time.perf_counter() - started,
                val_accuracy=val_accuracy,
                val_loss=val_loss,
            )

    def fit(
        self,
        images: Any,
        labels: Any,
        epochs: int,
        batch_size: int,
        callback: Optional[Callable[[EpochStats], Optional[bool]]] = None,
        **options: Any,
    ) -> List[EpochStats]:
        """Trains for ``epochs`` epochs of mini-batches and returns every epoch's stats.

        ``callback(stats)`` runs after each epoch; returning ``False`` stops training early.
        The other arguments, and the keyword ``options`` (``shuffle``, ``seed``,
        ``validation``, ``drop_last``), are those of :meth:`iter_fit`.
        """
        history: List[EpochStats] = []
        for stats in self.iter_fit(images, labels, epochs, batch_size, **options):
            history.append(stats)
            if callback is not None and callback(stats) is False:
                break
        return history

    def fit_native(
        self,
        dataset: "Dataset",
        epochs: int,
        batch_size: int,
        seed: int = 0,
        progress: Optional[Callable[..., Optional[bool]]] = None,
    ) -> Optional[StepResult]:
        """Trains with the library's own loop (``reparo_trainer_fit``): shuffled, seeded
        mini-batches over the library's copy of ``dataset`` (nothing is copied from Python).
        :meth:`iter_fit` on the dataset's arrays with the same seed takes the same batches.

        Args:
            dataset: an open :class:`Dataset` (:meth:`Dataset.load` or :meth:`Dataset.from_arrays`).
            epochs, batch_size, seed: as ``reparo_trainer_fit``.
            progress: called after every step as ``progress(result, epoch, epochs, batch,
                batches, epoch_loss, epoch_accuracy)``; returning ``False`` stops after that
                step (not an error). An exception in it stops training and is re-raised.

        Returns:
            The last step's result, or None if no step ran.

        Raises:
            ReparoError: as :meth:`step`, and INVALID_ARGUMENT for a dataset that does not
                match the student.
        """
        handle = self._require_open()
        failure: List[BaseException] = []
        last: List[StepResult] = []

        def report(result_p, epoch, epochs_, batch, batches, epoch_loss, epoch_accuracy, _user):  # type: ignore[no-untyped-def]
            try:
                result = _step_result(result_p.contents)
                last[:] = [result]
                if progress is not None and progress(
                    result, epoch, epochs_, batch, batches, float(epoch_loss), float(epoch_accuracy)
                ) is False:
                    return 1
                return 0
            except BaseException as error:  # stop, and re-raise in the caller's frame
                failure.append(error)
                return 1

        callback = _lib.reparo_progress_callback(report)  # referenced until the call returns
        status = _lib.reparo_trainer_fit(handle, dataset.handle, epochs, batch_size, seed, callback, None)
        if failure:
            raise failure[0]
        check(status)
        return last[0] if last else None

    def save(self, path: "os.PathLike[str] | str") -> None:
        """Saves the trainer's own state (momentum, step count, augmentation generator);
        with :meth:`Model.save` of the student it is a checkpoint.

        Raises:
            ReparoError: IO, INVALID_ARGUMENT.
        """
        check(_lib.reparo_trainer_save(self._require_open(), _lib.encode(os.fspath(path))))

    def load(self, path: "os.PathLike[str] | str") -> None:
        """Restores a state written by :meth:`save` (from a trainer whose student had the same
        spec and state).

        Raises:
            ReparoError: IO, FORMAT, INVALID_ARGUMENT (another spec).
        """
        check(_lib.reparo_trainer_load(self._require_open(), _lib.encode(os.fspath(path))))

    def __repr__(self) -> str:
        if self._handle is None:
            return "<reparo.Trainer closed>"
        return f"<reparo.Trainer options={self._options!r} teacher={'yes' if self._teacher else 'no'}>"
